// Poseidon2 over BabyBear, width 16 (Plonky3 0.8.0's default_babybear_poseidon2_16: S-box x^7,
// 4 + 4 external rounds, 13 internal rounds), and the sponge and compression Plonky3's
// MerkleTreeMmcs builds from it. Needs babybear.wgsl. The host side (src/workloads/poseidon2.rs)
// documents the layouts and the passes.
//
// The state is 16 field elements as 4 vec4<u32> in Montgomery form (P2State); all rounds are
// written out (no loops), so a permutation costs no loop iterations (lavapipe stops loops at
// 65,535).

struct Params {
    // Job parameters: mode, count, width, 0 (the host reads them back).
    job: vec4<u32>,
    // Threads of this pass (states, leaves or tree nodes).
    count: u32,
    // Elements per input row (leaf width; 16 for permutations).
    width: u32,
    // Digest index of the first child (compress).
    src_digest: u32,
    // Digest index of the first digest written.
    dst_digest: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;

// The internal layer's diagonal V (state_i <- V_i * state_i + sum), Montgomery form:
// V = [-2, 1, 2, 1/2, 3, 4, -1/2, -3, -4, 1/2^8, 1/4, 1/8, 1/2^27, -1/2^8, -1/16, -1/2^27]
// (Plonky3 0.8.0 BabyBearInternalLayerParameters, width 16).
const P2_DIAG0 = vec4<u32>(0x58000005u, 0x0ffffffeu, 0x1ffffffcu, 0x07ffffffu);
const P2_DIAG1 = vec4<u32>(0x2ffffffau, 0x3ffffff8u, 0x70000002u, 0x48000007u);
const P2_DIAG2 = vec4<u32>(0x38000009u, 0x01000000u, 0x40000000u, 0x20000000u);
const P2_DIAG3 = vec4<u32>(0x00000020u, 0x77000001u, 0x68000001u, 0x77ffffe1u);

// x^7 of a Montgomery-form element, lane by lane.
fn p2_sbox4(x: vec4<u32>) -> vec4<u32> {
    let x2 = bb_mont_mul4(x, x);
    let x3 = bb_mont_mul4(x2, x);
    let x4 = bb_mont_mul4(x2, x2);
    return bb_mont_mul4(x4, x3);
}

fn p2_sbox(x: u32) -> u32 {
    let x2 = bb_mont_mul(x, x);
    let x3 = bb_mont_mul(x2, x);
    let x4 = bb_mont_mul(x2, x2);
    return bb_mont_mul(x4, x3);
}

// Plonky3's MDSMat4 (apply_mat4): [[2,3,1,1],[1,2,3,1],[1,1,2,3],[3,1,1,2]], in its order of
// additions.
fn p2_mat4(x: vec4<u32>) -> vec4<u32> {
    let t01 = bb_add(x.x, x.y);
    let t23 = bb_add(x.z, x.w);
    let t0123 = bb_add(t01, t23);
    let t01123 = bb_add(t0123, x.y);
    let t01233 = bb_add(t0123, x.w);
    return vec4<u32>(
        bb_add(t01123, t01),
        bb_add(t01123, bb_add(x.z, x.z)),
        bb_add(t01233, t23),
        bb_add(t01233, bb_add(x.x, x.x)),
    );
}

// The state: 16 elements in Montgomery form, as four chunks of four.
struct P2State {
    a: vec4<u32>,
    b: vec4<u32>,
    c: vec4<u32>,
    d: vec4<u32>,
}

// The external linear layer (Plonky3's mds_light_permutation for width 16): M4 on each chunk of
// four, then each element plus the sum of the elements at its position in every chunk.
fn p2_mds_light(x: P2State) -> P2State {
    let a = p2_mat4(x.a);
    let b = p2_mat4(x.b);
    let c = p2_mat4(x.c);
    let d = p2_mat4(x.d);
    let sums = bb_add4(bb_add4(a, b), bb_add4(c, d));
    return P2State(bb_add4(a, sums), bb_add4(b, sums), bb_add4(c, sums), bb_add4(d, sums));
}

// Round constants added to every element, S-box on every element, external linear layer.
fn p2_external_round(x: P2State, r0: vec4<u32>, r1: vec4<u32>, r2: vec4<u32>, r3: vec4<u32>) -> P2State {
    return p2_mds_light(P2State(
        p2_sbox4(bb_add4(x.a, r0)),
        p2_sbox4(bb_add4(x.b, r1)),
        p2_sbox4(bb_add4(x.c, r2)),
        p2_sbox4(bb_add4(x.d, r3)),
    ));
}

// Round constant and S-box on element 0, then the internal layer 1 + Diag(V):
// state_i <- V_i * state_i + sum(state).
fn p2_internal_round(x: P2State, rc: u32) -> P2State {
    let a = vec4<u32>(p2_sbox(bb_add(x.a.x, rc)), x.a.yzw);
    let t = bb_add4(bb_add4(a, x.b), bb_add4(x.c, x.d));
    let sum = vec4<u32>(bb_add(bb_add(t.x, t.y), bb_add(t.z, t.w)));
    return P2State(
        bb_add4(bb_mont_mul4(a, P2_DIAG0), sum),
        bb_add4(bb_mont_mul4(x.b, P2_DIAG1), sum),
        bb_add4(bb_mont_mul4(x.c, P2_DIAG2), sum),
        bb_add4(bb_mont_mul4(x.d, P2_DIAG3), sum),
    );
}

// Round constants in Montgomery form (c * 2^32 mod p) of Plonky3 0.8.0's
// BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL / _INTERNAL / _EXTERNAL_FINAL, in round order;
// the test poseidon2::tests::wgsl_constants_are_plonky3s checks every literal.
fn bb_poseidon2_permute(x: P2State) -> P2State {
    let s0 = p2_mds_light(x);
    let s1 = p2_external_round(s0, vec4<u32>(0x5e4d6938u, 0x71385defu, 0x61ddbd3au, 0x1b941180u),
        vec4<u32>(0x4d20d77du, 0x52478027u, 0x732e57c3u, 0x10e63112u),
        vec4<u32>(0x3c99be27u, 0x0221857au, 0x4bbe9ab7u, 0x32c46133u),
        vec4<u32>(0x2f62cc76u, 0x37682266u, 0x1f3714e3u, 0x5f01dd7du));
    let s2 = p2_external_round(s1, vec4<u32>(0x35678506u, 0x67da0d24u, 0x36b3008au, 0x5a6765ccu),
        vec4<u32>(0x45c068bdu, 0x2ed4b9ecu, 0x249392d3u, 0x150a571cu),
        vec4<u32>(0x287549eau, 0x3bedb1b8u, 0x659e048eu, 0x46023d70u),
        vec4<u32>(0x1e55a92du, 0x1f9c528fu, 0x4f1ad620u, 0x547fa880u));
    let s3 = p2_external_round(s2, vec4<u32>(0x44c19b36u, 0x22c2f11au, 0x17b67671u, 0x55dddeb4u),
        vec4<u32>(0x1b18a7edu, 0x0a66840eu, 0x0a3cd409u, 0x771e5548u),
        vec4<u32>(0x53aaba92u, 0x6bbfe070u, 0x1ad7c512u, 0x56f4fbf9u),
        vec4<u32>(0x2ee93eacu, 0x3f67bc14u, 0x766f3f66u, 0x1cb5555cu));
    let s4 = p2_external_round(s3, vec4<u32>(0x496b4856u, 0x4ee52289u, 0x0e351627u, 0x77f2fa2bu),
        vec4<u32>(0x3d176cccu, 0x42103ad7u, 0x4c8a5ba9u, 0x242cfe16u),
        vec4<u32>(0x3ce22e52u, 0x2ae0610au, 0x2751c80bu, 0x2ddefdb7u),
        vec4<u32>(0x3003796eu, 0x234c77ebu, 0x687881f7u, 0x278ad903u));
    let s5 = p2_internal_round(s4, 0x0eee3c46u);
    let s6 = p2_internal_round(s5, 0x1f803700u);
    let s7 = p2_internal_round(s6, 0x57cbade6u);
    let s8 = p2_internal_round(s7, 0x3a3d3472u);
    let s9 = p2_internal_round(s8, 0x706866bdu);
    let s10 = p2_internal_round(s9, 0x413da073u);
    let s11 = p2_internal_round(s10, 0x08ca8f35u);
    let s12 = p2_internal_round(s11, 0x279652bbu);
    let s13 = p2_internal_round(s12, 0x17c601dau);
    let s14 = p2_internal_round(s13, 0x140a84a1u);
    let s15 = p2_internal_round(s14, 0x6113337bu);
    let s16 = p2_internal_round(s15, 0x34f6e216u);
    let s17 = p2_internal_round(s16, 0x22f9b8b2u);
    let s18 = p2_external_round(s17, vec4<u32>(0x3b98331au, 0x1225b500u, 0x20f18724u, 0x1add1eadu),
        vec4<u32>(0x27c8bae0u, 0x67810938u, 0x4f2405e1u, 0x44bd103fu),
        vec4<u32>(0x30ad7b47u, 0x4025183au, 0x7222068fu, 0x6376b2e5u),
        vec4<u32>(0x5165184au, 0x3a2811d0u, 0x3d7d5b9cu, 0x530c569du));
    let s19 = p2_external_round(s18, vec4<u32>(0x5caada1cu, 0x3d06627du, 0x5ffc6e6cu, 0x14ba29f8u),
        vec4<u32>(0x71d1c1e9u, 0x2c0fb8f7u, 0x198b65e1u, 0x25bcff06u),
        vec4<u32>(0x07427c35u, 0x059b1122u, 0x519ea061u, 0x4a81a536u),
        vec4<u32>(0x06cf9aa9u, 0x1eb2ca04u, 0x02ec7cacu, 0x74f6c733u));
    let s20 = p2_external_round(s19, vec4<u32>(0x524ebfdeu, 0x6edd9d09u, 0x03db6b21u, 0x0094e6fcu),
        vec4<u32>(0x643ed13bu, 0x2a5eb829u, 0x3ccf7585u, 0x544a7136u),
        vec4<u32>(0x5b49128fu, 0x0227bd55u, 0x2a88bdadu, 0x055c4d17u),
        vec4<u32>(0x6f822c4au, 0x179a43f2u, 0x42ec1895u, 0x68f3d82fu));
    let s21 = p2_external_round(s20, vec4<u32>(0x30dcf522u, 0x0806ab72u, 0x689d63dbu, 0x011943f8u),
        vec4<u32>(0x65709ccdu, 0x6a3c56e1u, 0x5871ed94u, 0x395e47bdu),
        vec4<u32>(0x6eb895c4u, 0x0d422bd9u, 0x03c4b679u, 0x1eb56ddeu),
        vec4<u32>(0x505e67b5u, 0x3a05211eu, 0x5ed5c104u, 0x2a1275f1u));
    return s21;
}

fn p2_to_mont4(x: vec4<u32>) -> vec4<u32> {
    return bb_mont_mul4(x, vec4<u32>(BB_R2));
}

fn p2_from_mont4(x: vec4<u32>) -> vec4<u32> {
    return bb_mont_mul4(x, vec4<u32>(1u));
}

fn p2_thread(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 64u + lid;
}

fn p2_read4(buf_at: u32) -> vec4<u32> {
    return p2_to_mont4(vec4<u32>(src[buf_at], src[buf_at + 1u], src[buf_at + 2u], src[buf_at + 3u]));
}

fn p2_read_out4(at: u32) -> vec4<u32> {
    return p2_to_mont4(vec4<u32>(out[at], out[at + 1u], out[at + 2u], out[at + 3u]));
}

fn p2_write4(at: u32, v: vec4<u32>) {
    let c = p2_from_mont4(v);
    out[at] = c.x;
    out[at + 1u] = c.y;
    out[at + 2u] = c.z;
    out[at + 3u] = c.w;
}

// Overwrites state elements 0..n (1 <= n <= 8) with input elements b..b + n (to Montgomery
// form). The reads are clamped to the last of them and the lanes past n keep their value, so
// the state is only ever indexed by constants.
fn p2_absorb(x: P2State, b: u32, n: u32) -> P2State {
    let l = n - 1u;
    let u = vec4<u32>(src[b], src[b + min(1u, l)], src[b + min(2u, l)], src[b + min(3u, l)]);
    let v = vec4<u32>(src[b + min(4u, l)], src[b + min(5u, l)], src[b + min(6u, l)], src[b + min(7u, l)]);
    return P2State(
        select(x.a, p2_to_mont4(u), vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n)),
        select(x.b, p2_to_mont4(v), vec4<u32>(4u, 5u, 6u, 7u) < vec4<u32>(n)),
        x.c,
        x.d,
    );
}

// Leaf i (row i of the input, `width` elements) hashed by PaddingFreeSponge<16, 8, 8> into
// digest dst_digest + i: from the zero state, each chunk of up to 8 elements overwrites the
// first elements of the state, then the state is permuted; the digest is the first 8 elements.
@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = p2_thread(wid, nwg, lid);
    if (i >= prm.count) {
        return;
    }
    let w = prm.width;
    let base = i * w;
    var s = P2State(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u));
    for (var off = 0u; off < w; off += 8u) {
        s = bb_poseidon2_permute(p2_absorb(s, base + off, min(8u, w - off)));
    }
    let d = (prm.dst_digest + i) * 8u;
    p2_write4(d, s.a);
    p2_write4(d + 4u, s.b);
}

// Row i of the input (16 elements) permuted into row i of the output. A separate entry point,
// not a branch of `main` on a uniform: lavapipe recompiles a shader for every submission when
// a uniform value selects between large branches.
@compute @workgroup_size(64, 1, 1)
fn permute(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = p2_thread(wid, nwg, lid);
    if (i >= prm.count) {
        return;
    }
    let base = i * 16u;
    let s = bb_poseidon2_permute(P2State(p2_read4(base), p2_read4(base + 4u), p2_read4(base + 8u), p2_read4(base + 12u)));
    p2_write4(base, s.a);
    p2_write4(base + 4u, s.b);
    p2_write4(base + 8u, s.c);
    p2_write4(base + 12u, s.d);
}

// Tree node i of a level: TruncatedPermutation<2, 8, 16> of digests src_digest + 2i and
// src_digest + 2i + 1 (left then right, 16 elements), into digest dst_digest + i.
@compute @workgroup_size(64, 1, 1)
fn compress(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = p2_thread(wid, nwg, lid);
    if (i >= prm.count) {
        return;
    }
    let l = (prm.src_digest + 2u * i) * 8u;
    let s = bb_poseidon2_permute(P2State(p2_read_out4(l), p2_read_out4(l + 4u), p2_read_out4(l + 8u), p2_read_out4(l + 12u)));
    let d = (prm.dst_digest + i) * 8u;
    p2_write4(d, s.a);
    p2_write4(d + 4u, s.b);
}
