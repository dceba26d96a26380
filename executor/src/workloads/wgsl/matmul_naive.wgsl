// Naive u32 matrix multiply: C = A * B (mod 2^32), n x n, row-major. One thread per element of
// C, workgroup 8 x 8, dispatch [ceil(n/8), ceil(n/8), 1]. The in-run baseline for benchmarks;
// same bindings and uniform as the tiled kernel.
//
// Bindings (group 0): 0 = A (read), 1 = B (read), 2 = C (read_write), 3 = Params (uniform).

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> mat_a: array<u32>;
@group(0) @binding(1) var<storage, read> mat_b: array<u32>;
@group(0) @binding(2) var<storage, read_write> mat_c: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = params.n;
    let col = gid.x;
    let row = gid.y;
    if (row >= n || col >= n) {
        return;
    }
    var sum = 0u;
    for (var k = 0u; k < n; k += 1u) {
        sum += mat_a[row * n + k] * mat_b[k * n + col];
    }
    mat_c[row * n + col] = sum;
}
