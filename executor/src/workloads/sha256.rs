//! Batched SHA-256: many independent 64-byte messages, one GPU thread per message.
//!
//! A 64-byte message is one data block plus one constant padding block, so every thread runs
//! the compression function twice. The input buffer is the messages back to back (64 bytes
//! each); the output buffer is the 32-byte digests back to back, byte for byte the standard
//! SHA-256 digests (the kernel byte-swaps the little-endian packed words on the way in and
//! out).
//!
//! Bindings (group 0): 0 = messages (input), 1 = digests (output), 2 = `Params { count, pad×3 }`
//! (uniform). Workgroup 64, dispatch `[ceil(count/64), 1, 1]`.

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{uniform_block, work_units, Kernel, Prepared, SplitMix64, Workload};

/// The SHA-256 kernel.
pub const WGSL: &str = include_str!("wgsl/sha256.wgsl");

/// The SHA-256 kernel as a [`Kernel`].
pub const KERNEL: Kernel = Kernel {
    name: "sha256",
    wgsl: WGSL,
    entry_point: "main",
};

/// Length of every message in bytes.
pub const MESSAGE_BYTES: usize = 64;
/// Length of every digest in bytes.
pub const DIGEST_BYTES: usize = 32;
/// Threads per workgroup (one message each).
pub const WORKGROUP_SIZE: u32 = 64;

/// Binding of the messages.
pub const BINDING_MESSAGES: u32 = 0;
/// Binding of the output digests.
pub const BINDING_DIGESTS: u32 = 1;
/// Binding of the uniform `Params { count, _pad0, _pad1, _pad2 }`.
pub const BINDING_PARAMS: u32 = 2;

/// SHA-256 of `messages` random 64-byte messages generated from `seed`.
///
/// `messages` must be at least 1. Work units: `messages / 1024` (at least 1), i.e. one unit =
/// 1024 messages (2048 compression-function calls).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256Batch {
    /// Number of 64-byte messages.
    pub messages: u32,
    /// Seed of the input generator.
    pub seed: u64,
}

impl Sha256Batch {
    /// The input: all messages back to back, 64 bytes each.
    pub fn input_bytes(&self) -> Vec<u8> {
        SplitMix64::new(self.seed).bytes(self.messages as usize * MESSAGE_BYTES)
    }
}

impl Workload for Sha256Batch {
    fn name(&self) -> &'static str {
        "sha256"
    }

    fn prepare(&self) -> Prepared {
        let count = self.messages;
        assert!(count > 0, "sha256: at least one message");
        Prepared {
            kernel: KERNEL,
            workgroups: [count.div_ceil(WORKGROUP_SIZE), 1, 1],
            inputs: vec![(BINDING_MESSAGES, self.input_bytes())],
            uniform: Some((BINDING_PARAMS, uniform_block(&[count, 0, 0, 0]))),
            output: (BINDING_DIGESTS, u64::from(count) * DIGEST_BYTES as u64),
            work_units: work_units(u128::from(count) << 10),
            passes: Vec::new(),
        }
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        let count = prepared.uniform_words()[0] as usize;
        let input = prepared
            .input(BINDING_MESSAGES)
            .expect("sha256: messages input");
        assert!(
            input.len() >= count * MESSAGE_BYTES,
            "sha256: input too short"
        );
        cpu_sha256_batch(&input[..count * MESSAGE_BYTES])
    }
}

/// The digests of the 64-byte messages in `messages`, concatenated (32 bytes each), computed
/// with the `sha2` crate. Panics unless `messages.len()` is a multiple of 64.
pub fn cpu_sha256_batch(messages: &[u8]) -> Vec<u8> {
    assert_eq!(
        messages.len() % MESSAGE_BYTES,
        0,
        "sha256: messages must be 64 bytes each"
    );
    let mut out = vec![0u8; messages.len() / MESSAGE_BYTES * DIGEST_BYTES];
    out.par_chunks_mut(DIGEST_BYTES)
        .zip(messages.par_chunks(MESSAGE_BYTES))
        .for_each(|(digest, msg)| digest.copy_from_slice(&Sha256::digest(msg)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::{bytes_to_words, words_to_bytes};

    /// The `u32` hex literals of the WGSL array that starts right after `marker`.
    fn wgsl_u32_array(marker: &str) -> Vec<u32> {
        let start = WGSL.find(marker).expect("marker in WGSL") + marker.len();
        let body = &WGSL[start..];
        let end = body.find(')').expect("end of array");
        body[..end]
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let hex = t.trim_end_matches('u').trim_start_matches("0x");
                u32::from_str_radix(hex, 16).expect("hex literal")
            })
            .collect()
    }

    /// A scalar model of the WGSL kernel for one message (same ring schedule, same byte swaps),
    /// using the constants parsed out of the WGSL source.
    fn kernel_model(msg: &[u32], k: &[u32], h_init: &[u32]) -> Vec<u32> {
        let rotr = |x: u32, n: u32| x.rotate_right(n);
        let mut s = [0u32; 8];
        s.copy_from_slice(h_init);
        let mut w = [0u32; 16];
        for blk in 0..2 {
            if blk == 0 {
                for (wt, m) in w.iter_mut().zip(msg) {
                    *wt = m.swap_bytes();
                }
            } else {
                w = [0; 16];
                w[0] = 0x8000_0000;
                w[15] = 512;
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = s;
            for t in 0..64usize {
                let wt = if t < 16 {
                    w[t]
                } else {
                    let w15 = w[(t + 1) & 15];
                    let w2 = w[(t + 14) & 15];
                    let w7 = w[(t + 9) & 15];
                    let w16 = w[t & 15];
                    let sig0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
                    let sig1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
                    let wt = sig1.wrapping_add(w7).wrapping_add(sig0).wrapping_add(w16);
                    w[t & 15] = wt;
                    wt
                };
                let big1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
                let ch = (e & f) ^ (!e & g);
                let t1 = h
                    .wrapping_add(big1)
                    .wrapping_add(ch)
                    .wrapping_add(k[t])
                    .wrapping_add(wt);
                let big0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t2 = big0.wrapping_add(maj);
                h = g;
                g = f;
                f = e;
                e = d.wrapping_add(t1);
                d = c;
                c = b;
                b = a;
                a = t1.wrapping_add(t2);
            }
            for (si, v) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
                *si = si.wrapping_add(v);
            }
        }
        s.iter().map(|x| x.swap_bytes()).collect()
    }

    #[test]
    fn zero_message_known_digest() {
        let digest = cpu_sha256_batch(&[0u8; 64]);
        assert_eq!(
            hex::encode(digest),
            "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b"
        );
    }

    #[test]
    fn reference_from_prepared_job() {
        let job = Sha256Batch {
            messages: 3,
            seed: 1,
        };
        let p = job.prepare();
        let out = job.cpu_reference(&p);
        assert_eq!(out.len() as u64, p.output.1);
        let msgs = job.input_bytes();
        for i in 0..3 {
            let d = Sha256::digest(&msgs[i * 64..(i + 1) * 64]);
            assert_eq!(&out[i * 32..(i + 1) * 32], d.as_slice());
        }
    }

    #[test]
    fn wgsl_constants_and_algorithm_match_sha2() {
        let k = wgsl_u32_array("var<private> K: array<u32, 64> = array<u32, 64>(");
        let h_init = wgsl_u32_array("const H_INIT = array<u32, 8>(");
        assert_eq!(k.len(), 64);
        assert_eq!(h_init.len(), 8);
        assert_eq!(k[0], 0x428a_2f98);
        assert_eq!(k[63], 0xc671_78f2);
        let job = Sha256Batch {
            messages: 5,
            seed: 77,
        };
        let mut msgs = job.input_bytes();
        msgs[..64].fill(0); // include the all-zero message
        let expected = cpu_sha256_batch(&msgs);
        let words = bytes_to_words(&msgs);
        let mut model = Vec::new();
        for m in words.chunks(16) {
            model.extend(kernel_model(m, &k, &h_init));
        }
        assert_eq!(words_to_bytes(&model), expected);
    }

    #[test]
    fn prepare_sizes() {
        let job = Sha256Batch {
            messages: 100,
            seed: 2,
        };
        let p = job.prepare();
        assert_eq!(p.kernel.name, "sha256");
        assert_eq!(p.workgroups, [2, 1, 1]);
        assert_eq!(p.input(BINDING_MESSAGES).unwrap().len(), 100 * 64);
        assert_eq!(p.output, (BINDING_DIGESTS, 100 * 32));
        let (binding, u) = p.uniform.as_ref().unwrap();
        assert_eq!(*binding, BINDING_PARAMS);
        assert_eq!(u.len() % 16, 0);
        assert_eq!(p.uniform_words(), vec![100, 0, 0, 0]);
        assert_eq!(p.work_units, 1);
        let big = Sha256Batch {
            messages: 4096,
            seed: 0,
        };
        assert_eq!(big.prepare().work_units, 4);
    }

    #[test]
    fn wgsl_declares_bindings() {
        assert!(WGSL.contains("@binding(0) var<storage, read>"));
        assert!(WGSL.contains("@binding(1) var<storage, read_write>"));
        assert!(WGSL.contains("@binding(2) var<uniform>"));
        assert!(WGSL.contains("@workgroup_size(64, 1, 1)"));
    }
}
