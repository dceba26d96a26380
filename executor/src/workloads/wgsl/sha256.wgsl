// Batched SHA-256 of 64-byte messages, one thread per message, workgroup 64,
// dispatch [ceil(count/64), 1, 1].
//
// Message i is bytes 64*i .. 64*i+63 of the input, packed little-endian 4 bytes per u32; SHA-256
// reads big-endian words, so every input word is byte-swapped. A 64-byte message is one data
// block plus one fixed padding block (0x80, zeros, bit length 512), so each thread runs the
// compression function twice. The digest is written as 8 byte-swapped state words, so the
// output bytes 32*i .. 32*i+31 are exactly the standard digest bytes.
//
// Bindings (group 0): 0 = messages (read), 1 = digests (read_write), 2 = Params (uniform).

struct Params {
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> msg_words: array<u32>;
@group(0) @binding(1) var<storage, read_write> digest_words: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

// Round constants. A private variable (rather than a `const`) so that runtime indexing goes
// through a pointer; naga would otherwise spill the constant array to a temporary per access.
var<private> K: array<u32, 64> = array<u32, 64>(
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u
);

// Initial hash value (indexed with constants only).
const H_INIT = array<u32, 8>(
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u
);

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

fn bswap(x: u32) -> u32 {
    return (x << 24u) | ((x << 8u) & 0x00ff0000u) | ((x >> 8u) & 0x0000ff00u) | (x >> 24u);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.count) {
        return;
    }

    var s0 = H_INIT[0];
    var s1 = H_INIT[1];
    var s2 = H_INIT[2];
    var s3 = H_INIT[3];
    var s4 = H_INIT[4];
    var s5 = H_INIT[5];
    var s6 = H_INIT[6];
    var s7 = H_INIT[7];

    // Message schedule as a 16-word ring: w[t & 15] holds W[t].
    var w: array<u32, 16>;

    for (var blk = 0u; blk < 2u; blk += 1u) {
        if (blk == 0u) {
            let base = i * 16u;
            for (var t = 0u; t < 16u; t += 1u) {
                w[t] = bswap(msg_words[base + t]);
            }
        } else {
            for (var t = 0u; t < 16u; t += 1u) {
                w[t] = 0u;
            }
            w[0] = 0x80000000u;
            w[15] = 512u;
        }

        var va = s0;
        var vb = s1;
        var vc = s2;
        var vd = s3;
        var ve = s4;
        var vf = s5;
        var vg = s6;
        var vh = s7;

        for (var t = 0u; t < 64u; t += 1u) {
            var wt: u32;
            if (t < 16u) {
                wt = w[t];
            } else {
                let w15 = w[(t + 1u) & 15u];   // W[t-15]
                let w2 = w[(t + 14u) & 15u];   // W[t-2]
                let w7 = w[(t + 9u) & 15u];    // W[t-7]
                let w16 = w[t & 15u];          // W[t-16]
                let sig0 = rotr(w15, 7u) ^ rotr(w15, 18u) ^ (w15 >> 3u);
                let sig1 = rotr(w2, 17u) ^ rotr(w2, 19u) ^ (w2 >> 10u);
                wt = sig1 + w7 + sig0 + w16;
                w[t & 15u] = wt;
            }
            let big1 = rotr(ve, 6u) ^ rotr(ve, 11u) ^ rotr(ve, 25u);
            let ch = (ve & vf) ^ (~ve & vg);
            let t1 = vh + big1 + ch + K[t] + wt;
            let big0 = rotr(va, 2u) ^ rotr(va, 13u) ^ rotr(va, 22u);
            let maj = (va & vb) ^ (va & vc) ^ (vb & vc);
            let t2 = big0 + maj;
            vh = vg;
            vg = vf;
            vf = ve;
            ve = vd + t1;
            vd = vc;
            vc = vb;
            vb = va;
            va = t1 + t2;
        }

        s0 += va;
        s1 += vb;
        s2 += vc;
        s3 += vd;
        s4 += ve;
        s5 += vf;
        s6 += vg;
        s7 += vh;
    }

    let dst = i * 8u;
    digest_words[dst] = bswap(s0);
    digest_words[dst + 1u] = bswap(s1);
    digest_words[dst + 2u] = bswap(s2);
    digest_words[dst + 3u] = bswap(s3);
    digest_words[dst + 4u] = bswap(s4);
    digest_words[dst + 5u] = bswap(s5);
    digest_words[dst + 6u] = bswap(s6);
    digest_words[dst + 7u] = bswap(s7);
}
