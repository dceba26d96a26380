// Wide tiled u32 matrix multiply: C = A * B (mod 2^32), n x n, row-major, n a multiple of 128.
//
// One workgroup of 16 x 16 threads computes a 128 x 128 tile of C; each thread computes an
// 8 x 8 block of it: rows 8*ty .. 8*ty+7, columns 4*tx .. 4*tx+3 ("lo") and 64+4*tx .. 64+4*tx+3
// ("hi") of the tile, kept in sixteen vec4<u32> accumulators (no indexed accumulator array).
// K is walked in steps of 8: per step every thread loads one vec4 of the A tile (128 x 8) and
// one vec4 of the B tile (8 x 128) into workgroup memory. Per 4 k values a thread reads 8 A and
// 8 B vec4s from workgroup memory for 256 multiply-adds (the 64-wide kernel reads 8 for 64).
// Every workgroup-array index is provably below 256 (tid < 256; ty*16 + 2r + kq <= 255;
// kq*128 + 112 + tx <= 255), so the kernel needs no runtime bounds checks. Global indices are
// in range when n is a multiple of 128 and the dispatch is [n/128, n/128, 1].
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

// a_tile[r * 2 + q] = A[row0 + r][k0 + 4q .. k0 + 4q + 3]   (r in 0..128, q in 0..2)
var<workgroup> a_tile: array<vec4<u32>, 256>;
// b_tile[k * 32 + c] = B[k0 + k][col0 + 4c .. col0 + 4c + 3]  (k in 0..8, c in 0..32)
var<workgroup> b_tile: array<vec4<u32>, 256>;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let n = params.n;
    let nq = n / 4u;
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    let row0 = wid.y * 128u;
    let col0 = wid.x * 128u;

    // A tile load: row tid/2, quad tid%2. B tile load: k-row tid/32, quad tid%32.
    let a_src = (row0 + tid / 2u) * nq + (tid % 2u);
    let b_src = (tid / 32u) * nq + col0 / 4u + (tid % 32u);
    let a_base = ty * 16u;
    var lo0 = vec4<u32>(0u);
    var hi0 = vec4<u32>(0u);
    var lo1 = vec4<u32>(0u);
    var hi1 = vec4<u32>(0u);
    var lo2 = vec4<u32>(0u);
    var hi2 = vec4<u32>(0u);
    var lo3 = vec4<u32>(0u);
    var hi3 = vec4<u32>(0u);
    var lo4 = vec4<u32>(0u);
    var hi4 = vec4<u32>(0u);
    var lo5 = vec4<u32>(0u);
    var hi5 = vec4<u32>(0u);
    var lo6 = vec4<u32>(0u);
    var hi6 = vec4<u32>(0u);
    var lo7 = vec4<u32>(0u);
    var hi7 = vec4<u32>(0u);

    for (var k0 = 0u; k0 < n; k0 += 8u) {
        a_tile[tid] = mat_a[a_src + k0 / 4u];
        b_tile[tid] = mat_b[b_src + k0 * nq];
        workgroupBarrier();

        for (var kq = 0u; kq < 2u; kq += 1u) {
            let kb = kq * 128u;
            let bl0 = b_tile[kb + tx];
            let bh0 = b_tile[kb + 16u + tx];
            let bl1 = b_tile[kb + 32u + tx];
            let bh1 = b_tile[kb + 48u + tx];
            let bl2 = b_tile[kb + 64u + tx];
            let bh2 = b_tile[kb + 80u + tx];
            let bl3 = b_tile[kb + 96u + tx];
            let bh3 = b_tile[kb + 112u + tx];
            let a0 = a_tile[a_base + 0u + kq];
            lo0 += vec4<u32>(a0.x) * bl0 + vec4<u32>(a0.y) * bl1 + vec4<u32>(a0.z) * bl2 + vec4<u32>(a0.w) * bl3;
            hi0 += vec4<u32>(a0.x) * bh0 + vec4<u32>(a0.y) * bh1 + vec4<u32>(a0.z) * bh2 + vec4<u32>(a0.w) * bh3;
            let a1 = a_tile[a_base + 2u + kq];
            lo1 += vec4<u32>(a1.x) * bl0 + vec4<u32>(a1.y) * bl1 + vec4<u32>(a1.z) * bl2 + vec4<u32>(a1.w) * bl3;
            hi1 += vec4<u32>(a1.x) * bh0 + vec4<u32>(a1.y) * bh1 + vec4<u32>(a1.z) * bh2 + vec4<u32>(a1.w) * bh3;
            let a2 = a_tile[a_base + 4u + kq];
            lo2 += vec4<u32>(a2.x) * bl0 + vec4<u32>(a2.y) * bl1 + vec4<u32>(a2.z) * bl2 + vec4<u32>(a2.w) * bl3;
            hi2 += vec4<u32>(a2.x) * bh0 + vec4<u32>(a2.y) * bh1 + vec4<u32>(a2.z) * bh2 + vec4<u32>(a2.w) * bh3;
            let a3 = a_tile[a_base + 6u + kq];
            lo3 += vec4<u32>(a3.x) * bl0 + vec4<u32>(a3.y) * bl1 + vec4<u32>(a3.z) * bl2 + vec4<u32>(a3.w) * bl3;
            hi3 += vec4<u32>(a3.x) * bh0 + vec4<u32>(a3.y) * bh1 + vec4<u32>(a3.z) * bh2 + vec4<u32>(a3.w) * bh3;
            let a4 = a_tile[a_base + 8u + kq];
            lo4 += vec4<u32>(a4.x) * bl0 + vec4<u32>(a4.y) * bl1 + vec4<u32>(a4.z) * bl2 + vec4<u32>(a4.w) * bl3;
            hi4 += vec4<u32>(a4.x) * bh0 + vec4<u32>(a4.y) * bh1 + vec4<u32>(a4.z) * bh2 + vec4<u32>(a4.w) * bh3;
            let a5 = a_tile[a_base + 10u + kq];
            lo5 += vec4<u32>(a5.x) * bl0 + vec4<u32>(a5.y) * bl1 + vec4<u32>(a5.z) * bl2 + vec4<u32>(a5.w) * bl3;
            hi5 += vec4<u32>(a5.x) * bh0 + vec4<u32>(a5.y) * bh1 + vec4<u32>(a5.z) * bh2 + vec4<u32>(a5.w) * bh3;
            let a6 = a_tile[a_base + 12u + kq];
            lo6 += vec4<u32>(a6.x) * bl0 + vec4<u32>(a6.y) * bl1 + vec4<u32>(a6.z) * bl2 + vec4<u32>(a6.w) * bl3;
            hi6 += vec4<u32>(a6.x) * bh0 + vec4<u32>(a6.y) * bh1 + vec4<u32>(a6.z) * bh2 + vec4<u32>(a6.w) * bh3;
            let a7 = a_tile[a_base + 14u + kq];
            lo7 += vec4<u32>(a7.x) * bl0 + vec4<u32>(a7.y) * bl1 + vec4<u32>(a7.z) * bl2 + vec4<u32>(a7.w) * bl3;
            hi7 += vec4<u32>(a7.x) * bh0 + vec4<u32>(a7.y) * bh1 + vec4<u32>(a7.z) * bh2 + vec4<u32>(a7.w) * bh3;
        }
        workgroupBarrier();
    }

    let c_base = (row0 + ty * 8u) * nq + col0 / 4u + tx;
    mat_c[c_base + 0u * nq] = lo0;
    mat_c[c_base + 0u * nq + 16u] = hi0;
    mat_c[c_base + 1u * nq] = lo1;
    mat_c[c_base + 1u * nq + 16u] = hi1;
    mat_c[c_base + 2u * nq] = lo2;
    mat_c[c_base + 2u * nq + 16u] = hi2;
    mat_c[c_base + 3u * nq] = lo3;
    mat_c[c_base + 3u * nq + 16u] = hi3;
    mat_c[c_base + 4u * nq] = lo4;
    mat_c[c_base + 4u * nq + 16u] = hi4;
    mat_c[c_base + 5u * nq] = lo5;
    mat_c[c_base + 5u * nq + 16u] = hi5;
    mat_c[c_base + 6u * nq] = lo6;
    mat_c[c_base + 6u * nq + 16u] = hi6;
    mat_c[c_base + 7u * nq] = lo7;
    mat_c[c_base + 7u * nq + 16u] = hi7;
}
