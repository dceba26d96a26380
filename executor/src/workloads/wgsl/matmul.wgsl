// Tiled u32 matrix multiply: C = A * B (mod 2^32), n x n, row-major, n a multiple of 64.
//
// One workgroup of 16 x 16 threads computes a 64 x 64 tile of C; each thread computes a
// 4 x 4 block of it (rows 4*ty .. 4*ty+3, columns 4*tx .. 4*tx+3 of the tile), kept in four
// vec4<u32> accumulators, one per row. K is walked in steps of 16: per step every thread loads
// exactly one vec4 of the A tile (64 rows x 16) and one vec4 of the B tile (16 x 64) into
// workgroup memory. Every workgroup-array index below is provably in range (tid < 256,
// ty*16 + r*4 + kq < 256, (kq*4 + j)*16 + tx < 256), so the kernel needs no runtime bounds
// checks and may be created with checks disabled. Global indices are in range when n is a
// multiple of 64 and the dispatch is [n/64, n/64, 1].
//
// Bindings (group 0): 0 = A (read), 1 = B (read), 2 = C (read_write), 3 = Params (uniform).

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> mat_a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> mat_b: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> mat_c: array<vec4<u32>>;
@group(0) @binding(3) var<uniform> params: Params;

// a_tile[r * 4 + q] = A[row0 + r][k0 + 4q .. k0 + 4q + 3]   (r in 0..64, q in 0..4)
var<workgroup> a_tile: array<vec4<u32>, 256>;
// b_tile[k * 16 + c] = B[k0 + k][col0 + 4c .. col0 + 4c + 3]  (k in 0..16, c in 0..16)
var<workgroup> b_tile: array<vec4<u32>, 256>;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let n = params.n;
    let nq = n / 4u;              // row length in vec4s
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;     // 0..256
    let row0 = wid.y * 64u;
    let col0 = wid.x * 64u;

    // A tile load: thread `tid` loads row tid/4, quad tid%4 (4 threads per 64-byte row piece).
    let a_src = (row0 + tid / 4u) * nq + (tid % 4u);
    // B tile load: thread `tid` loads k-row ty, quad tx (16 threads per 256-byte row piece).
    let b_src = ty * nq + col0 / 4u + tx;

    var acc0 = vec4<u32>(0u);
    var acc1 = vec4<u32>(0u);
    var acc2 = vec4<u32>(0u);
    var acc3 = vec4<u32>(0u);

    let a_base = ty * 16u;        // first a_tile entry of this thread's 4 rows (row 4*ty)

    for (var k0 = 0u; k0 < n; k0 += 16u) {
        a_tile[tid] = mat_a[a_src + k0 / 4u];
        b_tile[tid] = mat_b[b_src + k0 * nq];
        workgroupBarrier();

        for (var kq = 0u; kq < 4u; kq += 1u) {
            // Four B rows k0+4kq .. k0+4kq+3, this thread's 4 columns each.
            let b0 = b_tile[kq * 64u + tx];
            let b1 = b_tile[kq * 64u + 16u + tx];
            let b2 = b_tile[kq * 64u + 32u + tx];
            let b3 = b_tile[kq * 64u + 48u + tx];
            // This thread's 4 A rows, columns k0+4kq .. k0+4kq+3 each.
            let a0 = a_tile[a_base + kq];
            let a1 = a_tile[a_base + 4u + kq];
            let a2 = a_tile[a_base + 8u + kq];
            let a3 = a_tile[a_base + 12u + kq];

            acc0 += vec4<u32>(a0.x) * b0 + vec4<u32>(a0.y) * b1 + vec4<u32>(a0.z) * b2 + vec4<u32>(a0.w) * b3;
            acc1 += vec4<u32>(a1.x) * b0 + vec4<u32>(a1.y) * b1 + vec4<u32>(a1.z) * b2 + vec4<u32>(a1.w) * b3;
            acc2 += vec4<u32>(a2.x) * b0 + vec4<u32>(a2.y) * b1 + vec4<u32>(a2.z) * b2 + vec4<u32>(a2.w) * b3;
            acc3 += vec4<u32>(a3.x) * b0 + vec4<u32>(a3.y) * b1 + vec4<u32>(a3.z) * b2 + vec4<u32>(a3.w) * b3;
        }
        workgroupBarrier();
    }

    let c_base = (row0 + ty * 4u) * nq + col0 / 4u + tx;
    mat_c[c_base] = acc0;
    mat_c[c_base + nq] = acc1;
    mat_c[c_base + 2u * nq] = acc2;
    mat_c[c_base + 3u * nq] = acc3;
}
