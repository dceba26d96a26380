// int8 dot-product layer: y = W x, W int8 rows x cols (row-major), x int8 (cols), y i32 (rows).
// cols is a multiple of 4; int8 values are packed 4 per u32, byte 0 = element 0 (two's
// complement). One thread per row, workgroup 64, dispatch [ceil(rows/64), 1, 1]; each thread
// sums dot4I8Packed over its row's cols/4 words with wrapping i32 adds.
//
// dot4I8Packed is a WGSL builtin of the packed_4x8_integer_dot_product language feature (no
// `enable` directive; naga lowers it to OpSDot when the device supports it, else to shifts and
// multiplies). Both are exact.
//
// Bindings (group 0): 0 = W (read), 1 = x (read), 2 = y (read_write), 3 = Params (uniform).

struct Params {
    rows: u32,
    cols_words: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x_vec: array<u32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<i32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if (row >= params.rows) {
        return;
    }
    let cw = params.cols_words;
    let base = row * cw;
    var acc = 0i;
    for (var k = 0u; k < cw; k += 1u) {
        acc += dot4I8Packed(weights[base + k], x_vec[k]);
    }
    y_out[row] = acc;
}
