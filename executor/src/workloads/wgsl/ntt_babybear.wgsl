// Batched radix-2 NTT over BabyBear, one pass of up to 11 butterfly stages per dispatch
// (entry `main`), and an in-place bit-reversal of rows (entry `bitrev_rows`). The host side
// (src/workloads/ntt.rs) documents the data layout and builds the passes. Needs babybear.wgsl.
//
// Within a pass, each thread does two stages at once on four elements (a radix-4 step made of
// four radix-2 butterflies), so a pass of k stages has ceil(k / 2) + 1 workgroup barriers; the
// twiddles of all its stages are computed once, after the load.
//
// Data: row-major, `cols` columns, element (row, col) at word row * cols + col, canonical.
// A pass works on tiles of 2^k rows x 2^log_c columns (2^k * 2^log_c <= 2048 words): the rows
// whose index differs only in bits s0..s0+k-1, which are exactly the rows that stages
// s0..s0+k-1 mix. Stage s pairs rows i and i + 2^s (i with bit s clear) with the twiddle
// w_{2^(s+1)}^(i mod 2^s) = w_T^((i mod 2^s) << (log_t - s - 1)). DIT runs the stages upwards
// (bit-reversed input, natural output), DIF downwards (natural input, bit-reversed output).

struct Params {
    // Job parameters (the host reads them back; the kernel does not use them).
    job0: vec4<u32>,
    job1: vec4<u32>,
    // log2 of the transform size T.
    log_t: u32,
    // Columns of the matrix.
    cols: u32,
    // log2 of the tile's columns.
    log_c: u32,
    // First stage of this pass.
    s0: u32,
    // Stages in this pass (1..=11 - log_c).
    k: u32,
    // FLAG_* bits.
    flags: u32,
    // Word offset of the twiddle tables in `tables`: 4096 low powers, then 4096 high powers.
    tw_off: u32,
    // Word offset of the load-scaling tables (same shape).
    sc_off: u32,
    // FLAG_FIRST: natural indices at or past n_valid load as zero (zero padding).
    n_valid: u32,
    // FLAG_INPUT_BITREV: bits of the source row index.
    log_src: u32,
    // ceil(cols / 2^log_c).
    col_blocks: u32,
    // Workgroups with work: 2^(log_t - k) * col_blocks.
    total_wg: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
}

// Gentleman-Sande (DIF) butterflies instead of Cooley-Tukey (DIT).
const FLAG_DIF: u32 = 1u;
// The pass loads through the first-pass mapping: natural index j of each tile row (bit-reversed
// row for DIT), zero at or past n_valid, source row j (or bitrev(j)), optional scaling.
const FLAG_FIRST: u32 = 2u;
// Load from `src` (the job input) instead of `data` (in place).
const FLAG_FROM_INPUT: u32 = 4u;
// The source rows are in bit-reversed order (log_src bits).
const FLAG_INPUT_BITREV: u32 = 8u;
// Multiply element j by the scale table's value for j (c * g^j).
const FLAG_SCALE: u32 = 16u;

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> tables: array<u32>;
@group(0) @binding(2) var<storage, read_write> data: array<u32>;
@group(0) @binding(3) var<uniform> prm: Params;

var<workgroup> tile: array<u32, 2048>;
// The twiddles of the pass: stage q's 2^q values at 2^q - 1 (2^k - 1 <= 2047 in all).
var<workgroup> twd: array<u32, 2048>;

fn bitrev(x: u32, bits: u32) -> u32 {
    return reverseBits(x) >> (32u - bits);
}

// Montgomery form of a two-level table entry at `off` for exponent e < 2^24:
// low[e & 4095] * high[e >> 12].
fn table_pow(off: u32, e: u32) -> u32 {
    return bb_mont_mul(tables[off + (e & 4095u)], tables[off + 4096u + (e >> 12u)]);
}

// The value of tile row `row` (transform row index), column `col`, in the first pass.
fn load_first(row: u32, col: u32) -> u32 {
    var j = row;
    if ((prm.flags & FLAG_DIF) == 0u) {
        j = bitrev(row, prm.log_t);
    }
    if (j >= prm.n_valid) {
        return 0u;
    }
    var src_row = j;
    if ((prm.flags & FLAG_INPUT_BITREV) != 0u) {
        src_row = bitrev(j, prm.log_src);
    }
    let at = src_row * prm.cols + col;
    var v: u32;
    if ((prm.flags & FLAG_FROM_INPUT) != 0u) {
        v = src[at];
    } else {
        v = data[at];
    }
    if ((prm.flags & FLAG_SCALE) != 0u) {
        v = bb_mont_mul(v, table_pow(prm.sc_off, j));
    }
    return v;
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= prm.total_wg) {
        return;
    }
    let log_c = prm.log_c;
    let c_mask = (1u << log_c) - 1u;
    let w = prm.cols;
    let s0 = prm.s0;
    let k = prm.k;
    let cb = g % prm.col_blocks;
    let qg = g / prm.col_blocks;
    let lo = qg & ((1u << s0) - 1u);
    let hi = qg >> s0;
    let tile_rows = 1u << k;
    let words = tile_rows << log_c;
    let col0 = cb << log_c;
    let first = (prm.flags & FLAG_FIRST) != 0u;
    let dif = (prm.flags & FLAG_DIF) != 0u;

    for (var t = lid; t < words; t += WG) {
        let col = col0 + (t & c_mask);
        let row = lo | ((t >> log_c) << s0) | (hi << (s0 + k));
        var v = 0u;
        if (col < w) {
            if (first) {
                v = load_first(row, col);
            } else {
                v = data[row * w + col];
            }
        }
        tile[t] = v;
    }
    // Stage q (global stage s = s0 + q) pairs tile rows r and r + 2^q; its twiddle for
    // jj = r mod 2^q is w_{2^(s+1)}^(lo + jj * 2^s0).
    for (var t = lid; t < tile_rows - 1u; t += WG) {
        let q = firstLeadingBit(t + 1u);
        let jj = t + 1u - (1u << q);
        twd[t] = table_pow(prm.tw_off, (lo | (jj << s0)) << (prm.log_t - s0 - q - 1u));
    }
    workgroupBarrier();

    // Stages q and q + 1 on rows r, r + m, r + 2m, r + 3m (m = 2^q, bits q and q + 1 of r
    // clear): DIT does stage q then q + 1 going up, DIF q + 1 then q coming down.
    let quads = (tile_rows >> 2u) << log_c;
    var i = 0u;
    loop {
        if (i + 2u > k) {
            break;
        }
        let q = select(i, k - 2u - i, dif);
        let m = 1u << q;
        for (var b = lid; b < quads; b += WG) {
            let p = b >> log_c;
            let c = b & c_mask;
            let jj = p & (m - 1u);
            let r = ((p >> q) << (q + 2u)) | jj;
            let w1 = twd[m - 1u + jj];
            let w2 = twd[2u * m - 1u + jj];
            let w3 = twd[3u * m - 1u + jj];
            let i0 = (r << log_c) | c;
            let i1 = ((r + m) << log_c) | c;
            let i2 = ((r + 2u * m) << log_c) | c;
            let i3 = ((r + 3u * m) << log_c) | c;
            let a0 = tile[i0];
            let a1 = tile[i1];
            let a2 = tile[i2];
            let a3 = tile[i3];
            if (dif) {
                let b0 = bb_add(a0, a2);
                let b2 = bb_mont_mul(bb_sub(a0, a2), w2);
                let b1 = bb_add(a1, a3);
                let b3 = bb_mont_mul(bb_sub(a1, a3), w3);
                tile[i0] = bb_add(b0, b1);
                tile[i1] = bb_mont_mul(bb_sub(b0, b1), w1);
                tile[i2] = bb_add(b2, b3);
                tile[i3] = bb_mont_mul(bb_sub(b2, b3), w1);
            } else {
                let t1 = bb_mont_mul(a1, w1);
                let b0 = bb_add(a0, t1);
                let b1 = bb_sub(a0, t1);
                let t3 = bb_mont_mul(a3, w1);
                let b2 = bb_add(a2, t3);
                let b3 = bb_sub(a2, t3);
                let u2 = bb_mont_mul(b2, w2);
                let u3 = bb_mont_mul(b3, w3);
                tile[i0] = bb_add(b0, u2);
                tile[i2] = bb_sub(b0, u2);
                tile[i1] = bb_add(b1, u3);
                tile[i3] = bb_sub(b1, u3);
            }
        }
        workgroupBarrier();
        i += 2u;
    }
    // An odd stage left: the top one (DIT) or stage 0 (DIF), radix 2.
    if (i < k) {
        let q = select(k - 1u, 0u, dif);
        let m = 1u << q;
        let pairs = (tile_rows >> 1u) << log_c;
        for (var b = lid; b < pairs; b += WG) {
            let p = b >> log_c;
            let c = b & c_mask;
            let jj = p & (m - 1u);
            let r = ((p >> q) << (q + 1u)) | jj;
            let i0 = (r << log_c) | c;
            let i1 = ((r + m) << log_c) | c;
            let x = tile[i0];
            let y = tile[i1];
            let tw = twd[m - 1u + jj];
            if (dif) {
                tile[i0] = bb_add(x, y);
                tile[i1] = bb_mont_mul(bb_sub(x, y), tw);
            } else {
                let ty = bb_mont_mul(y, tw);
                tile[i0] = bb_add(x, ty);
                tile[i1] = bb_sub(x, ty);
            }
        }
        workgroupBarrier();
    }

    for (var t = lid; t < words; t += WG) {
        let col = col0 + (t & c_mask);
        if (col < w) {
            let row = lo | ((t >> log_c) << s0) | (hi << (s0 + k));
            data[row * w + col] = tile[t];
        }
    }
}

// Swaps rows i and bitrev(i) of the 2^log_t x cols matrix in `data`, one thread per element.
@compute @workgroup_size(256, 1, 1)
fn bitrev_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = (wid.x + wid.y * nwg.x) * WG + lid;
    let w = prm.cols;
    if (t >= (1u << prm.log_t) * w) {
        return;
    }
    let r = t / w;
    let c = t - r * w;
    let rr = bitrev(r, prm.log_t);
    if (r < rr) {
        let a = r * w + c;
        let b = rr * w + c;
        let x = data[a];
        data[a] = data[b];
        data[b] = x;
    }
}
