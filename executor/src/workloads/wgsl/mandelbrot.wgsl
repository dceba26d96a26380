// Fixed-point Mandelbrot escape times, Q4.28 signed (i32, 1.0 = 1 << 28), no floats and no
// 64-bit integers, so every implementation computes the same counts.
//
// View: real part -2.5 .. 1.0 (left to right), imaginary part +1.25 .. -1.25 (top to bottom),
// sampled at pixel centres: dx = (3.5 in Q28) / width, dy = (2.5 in Q28) / height (u32
// division, truncating), c = (-2.5 + x*dx + dx/2, 1.25 - y*dy - dy/2).
//
// Iteration from z = 0, n = 0, while n < max_iter:
//   escape if |zr| > 2.0 or |zi| > 2.0 (magnitudes as u32, so no product can overflow);
//   zr2 = |zr|*|zr|, zi2 = |zi|*|zi| (both <= 4.0 = 2^30); escape if zr2 + zi2 > 4.0, the sum
//   taken in u32 (it is at most 2^31, so it cannot wrap);
//   zi = 2 * (zr * zi) + ci;  zr = zr2 - zi2 + cr;  n += 1.
// The output is n per pixel (u32, row-major).
//
// Products: mul_q28(a, b) = sign(a*b) * floor(|a|*|b| / 2^28) (magnitude truncated toward zero),
// taken modulo 2^32; the 64-bit product |a|*|b| is built from 16-bit limbs in u32.
// i32 additions wrap (they cannot overflow for in-view c, see the Rust reference).
//
// Bindings (group 0): 0 = iteration counts (read_write), 1 = Params (uniform; height = the
// rows this job renders), 2 = View (read-only): the job renders rows first_row.. of an
// image_height-row image, so the tasks of a batch can render one image as strips.
// Workgroup 8 x 8, dispatch [ceil(width/8), ceil(height/8), 1].

struct Params {
    width: u32,
    height: u32,
    max_iter: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read_write> iters: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;
// [first_row, image_height]
@group(0) @binding(2) var<storage, read> view: array<u32, 2>;

const X_MIN_Q28: i32 = -671088640;   // -2.5
const Y_MAX_Q28: i32 = 335544320;    //  1.25
const SPAN_X_Q28: u32 = 939524096u;  //  3.5
const SPAN_Y_Q28: u32 = 671088640u;  //  2.5
const TWO_Q28: u32 = 0x20000000u;    //  2.0
const FOUR_Q28: u32 = 0x40000000u;   //  4.0

// |x| as u32 (exact for i32::MIN too).
fn magnitude(x: i32) -> u32 {
    let u = bitcast<u32>(x);
    return select(u, 0u - u, x < 0);
}

// floor(ma * mb / 2^28) mod 2^32 for magnitudes ma, mb, via 16-bit limbs.
fn mul_mag_q28(ma: u32, mb: u32) -> u32 {
    let ah = ma >> 16u;
    let al = ma & 0xffffu;
    let bh = mb >> 16u;
    let bl = mb & 0xffffu;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let cross = lh + hl;                              // may wrap: carry is worth 2^48
    let cross_carry = select(0u, 1u, cross < lh);
    let lo = ll + (cross << 16u);
    let lo_carry = select(0u, 1u, lo < ll);
    let hi = hh + (cross >> 16u) + (cross_carry << 16u) + lo_carry;
    return (hi << 4u) | (lo >> 28u);
}

// Signed Q28 product: magnitude truncated toward zero, then the sign applied (mod 2^32).
fn mul_q28(a: i32, b: i32) -> i32 {
    let m = mul_mag_q28(magnitude(a), magnitude(b));
    let negative = (a < 0) != (b < 0);
    return bitcast<i32>(select(m, 0u - m, negative));
}

fn escape_time(cr: i32, ci: i32, max_iter: u32) -> u32 {
    var zr = 0i;
    var zi = 0i;
    var n = 0u;
    loop {
        if (n >= max_iter) {
            break;
        }
        let mr = magnitude(zr);
        let mi = magnitude(zi);
        if (mr > TWO_Q28 || mi > TWO_Q28) {
            break;
        }
        let zr2 = mul_mag_q28(mr, mr);
        let zi2 = mul_mag_q28(mi, mi);
        if (zr2 + zi2 > FOUR_Q28) {
            break;
        }
        let zri = mul_q28(zr, zi);
        zi = zri + zri + ci;
        zr = bitcast<i32>(zr2) - bitcast<i32>(zi2) + cr;
        n += 1u;
    }
    return n;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= params.width || y >= params.height) {
        return;
    }
    let dx = bitcast<i32>(SPAN_X_Q28 / params.width);
    let dy = bitcast<i32>(SPAN_Y_Q28 / view[1]);
    let cr = X_MIN_Q28 + bitcast<i32>(x) * dx + dx / 2;
    let ci = Y_MAX_Q28 - bitcast<i32>(view[0] + y) * dy - dy / 2;
    iters[y * params.width + x] = escape_time(cr, ci, params.max_iter);
}
