// BabyBear field arithmetic (p = 2^31 - 2^27 + 1) on u32, shared by the BabyBear kernels.
// Montgomery multiplication with R = 2^32 from 16-bit limb products: WGSL has no 64-bit
// integers and no mul_hi. The derivation and the CPU port (babybear::mont_mul, tested against
// Plonky3) are in src/workloads/babybear.rs. Inputs below 2^31, results in [0, p).

const BB_P: u32 = 0x78000001u;
// p^-1 mod 2^32.
const BB_MU: u32 = 0x88000001u;
// p >> 16; the low 16 bits of p are 1.
const BB_P_HI: u32 = 0x7800u;
// R^2 mod p: bb_mont_mul(x, BB_R2) is the Montgomery form of x.
const BB_R2: u32 = 0x45dddde3u;

fn bb_add(a: u32, b: u32) -> u32 {
    let s = a + b;
    return select(s, s - BB_P, s >= BB_P);
}

fn bb_sub(a: u32, b: u32) -> u32 {
    return select(a - b, a - b + BB_P, a < b);
}

// a * b * 2^-32 mod p.
fn bb_mont_mul(a: u32, b: u32) -> u32 {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let lo = a0 * b0;
    let mid = a0 * b1 + a1 * b0;
    let hi = a1 * b1;
    let t_lo = lo + (mid << 16u);
    let t_hi = hi + (mid >> 16u) + select(0u, 1u, t_lo < lo);
    let m = t_lo * BB_MU;
    let m0 = m & 0xffffu;
    let m1 = m >> 16u;
    let x = m0 * BB_P_HI;
    let y = (x << 16u) + m;
    let u_hi = m1 * BB_P_HI + (x >> 16u) + select(0u, 1u, y < m);
    return select(t_hi - u_hi, t_hi - u_hi + BB_P, t_hi < u_hi);
}

fn bb_add4(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let s = a + b;
    return select(s, s - vec4<u32>(BB_P), s >= vec4<u32>(BB_P));
}

// The same algorithm lane by lane.
fn bb_mont_mul4(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let mask = vec4<u32>(0xffffu);
    let a0 = a & mask;
    let a1 = a >> vec4<u32>(16u);
    let b0 = b & mask;
    let b1 = b >> vec4<u32>(16u);
    let lo = a0 * b0;
    let mid = a0 * b1 + a1 * b0;
    let hi = a1 * b1;
    let t_lo = lo + (mid << vec4<u32>(16u));
    let t_hi = hi + (mid >> vec4<u32>(16u)) + select(vec4<u32>(0u), vec4<u32>(1u), t_lo < lo);
    let m = t_lo * vec4<u32>(BB_MU);
    let m0 = m & mask;
    let m1 = m >> vec4<u32>(16u);
    let x = m0 * vec4<u32>(BB_P_HI);
    let y = (x << vec4<u32>(16u)) + m;
    let u_hi = m1 * vec4<u32>(BB_P_HI) + (x >> vec4<u32>(16u)) + select(vec4<u32>(0u), vec4<u32>(1u), y < m);
    let d = t_hi - u_hi;
    return select(d, d + vec4<u32>(BB_P), t_hi < u_hi);
}
