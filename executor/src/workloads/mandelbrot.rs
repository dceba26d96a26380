//! Fixed-point Mandelbrot: the escape time of every pixel, in Q4.28 arithmetic (`i32`,
//! 1.0 = 2^28) so that GPU and CPU compute the same counts.
//!
//! View: real part −2.5 … 1.0 left to right, imaginary part +1.25 … −1.25 top to bottom,
//! sampled at pixel centres with steps `dx = ⌊3.5·2^28 / width⌋`, `dy = ⌊2.5·2^28 / height⌋`
//! (so pixels are square when `height = width · 5/7`; otherwise the view is stretched).
//!
//! Iteration (see [`escape_time`]): from `z = 0`, at most `max_iter` times, escape if
//! `|zr| > 2` or `|zi| > 2`, else compute `zr² = |zr|·|zr|`, `zi² = |zi|·|zi|` (each ≤ 4.0 =
//! 2^30) and escape if `zr² + zi² > 4.0`, the sum taken in `u32` (≤ 2^31, no wrap; 4.0 itself
//! does not fit a Q4.28 `i32`); otherwise `zi = 2·(zr·zi) + ci`, `zr = zr² − zi² + cr`. The
//! output is the number of completed iterations per pixel (`u32`, row-major).
//!
//! Products ([`mul_q28`]) truncate the magnitude toward zero and then apply the sign, modulo
//! 2^32; the kernel builds the 64-bit product from 16-bit limbs, and this module ports that
//! exact algorithm (tested against an `i64` reference).
//!
//! Bindings (group 0): 0 = iteration counts (output), 1 = `Params { width, height, max_iter,
//! pad }` (uniform; `height` is the rows this job renders), 2 = `View { first_row,
//! image_height }` (input, two `u32`): the job renders rows `first_row ..` of an
//! `image_height`-row image (`dy` comes from `image_height`). A whole image is `[0, height]`;
//! a batch of [`MandelbrotTile`]s renders one image as horizontal strips, one per task,
//! whose outputs concatenated in task order are the whole image's. Workgroup 8 × 8, dispatch
//! `[ceil(width/8), ceil(height/8), 1]`.

use rayon::prelude::*;

use super::{uniform_block, work_units, Kernel, Prepared, Workload};

/// The Mandelbrot kernel.
pub const WGSL: &str = include_str!("wgsl/mandelbrot.wgsl");

/// The Mandelbrot kernel as a [`Kernel`].
pub const KERNEL: Kernel = Kernel {
    name: "mandelbrot",
    wgsl: WGSL,
    entry_point: "main",
};

/// Binding of the output iteration counts.
pub const BINDING_ITERS: u32 = 0;
/// Binding of the uniform `Params { width, height, max_iter, _pad0 }`.
pub const BINDING_PARAMS: u32 = 1;
/// Binding of the input `View { first_row, image_height }`.
pub const BINDING_VIEW: u32 = 2;

/// 1.0 in Q4.28.
pub const ONE_Q28: i32 = 1 << 28;
/// Left edge of the view, −2.5 in Q4.28.
pub const X_MIN_Q28: i32 = -(5 << 27);
/// Top edge of the view, +1.25 in Q4.28.
pub const Y_MAX_Q28: i32 = 5 << 26;
/// Width of the view, 3.5 in Q4.28.
pub const SPAN_X_Q28: u32 = 7 << 27;
/// Height of the view, 2.5 in Q4.28.
pub const SPAN_Y_Q28: u32 = 5 << 27;
/// 2.0 in Q4.28, the per-component escape bound (as a magnitude).
pub const TWO_Q28: u32 = 2 << 28;
/// 4.0 = 2^30, the escape bound of `zr² + zi²` (as a `u32`; it does not fit a Q4.28 `i32`).
pub const FOUR_Q28: u32 = 4 << 28;

/// A `width × height` escape-time image with at most `max_iter` iterations per pixel.
///
/// `width` and `height` must be at least 1. Work units: `width · height · max_iter / 2^20`
/// (at least 1), i.e. one unit = 2^20 worst-case iterations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mandelbrot {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Iteration limit; pixels that never escape report exactly this value.
    pub max_iter: u32,
}

impl Workload for Mandelbrot {
    fn name(&self) -> &'static str {
        "mandelbrot"
    }

    fn prepare(&self) -> Prepared {
        prepare_rows(self.width, self.height, self.max_iter, 0, self.height)
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        reference(prepared)
    }
}

/// Strip `tile` of `tiles` of the image `image`: rows `tile · h .. (tile + 1) · h` with
/// `h = image.height / tiles` (`image.height` a multiple of `tiles`, `tile < tiles`). The
/// tiles of one image share kernel, dispatch and parameters and differ only in their
/// `View` input, so they batch as the tasks of one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MandelbrotTile {
    /// The whole image.
    pub image: Mandelbrot,
    /// This strip's index, from the top.
    pub tile: u32,
    /// Strips in the image.
    pub tiles: u32,
}

impl MandelbrotTile {
    /// Strip `tile` (below `tiles`) of a `width`-pixel-wide image whose height is `height`
    /// rounded up to a multiple of `tiles` (so every strip has the same shape), `max_iter`
    /// iterations.
    pub fn strip(width: u32, height: u32, max_iter: u32, tile: u32, tiles: u32) -> Self {
        let tiles = tiles.max(1);
        let image = Mandelbrot { width: width.max(1), height: height.max(1).div_ceil(tiles) * tiles, max_iter };
        Self { image, tile: tile.min(tiles - 1), tiles }
    }
}

impl Workload for MandelbrotTile {
    fn name(&self) -> &'static str {
        "mandelbrot"
    }

    fn prepare(&self) -> Prepared {
        let rows = self.image.height / self.tiles.max(1);
        prepare_rows(self.image.width, rows, self.image.max_iter, self.tile * rows, self.image.height)
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        reference(prepared)
    }
}

/// The job rendering `rows` rows from `first_row` of a `width × image_height` image.
fn prepare_rows(width: u32, rows: u32, max_iter: u32, first_row: u32, image_height: u32) -> Prepared {
    assert!(width > 0 && rows > 0 && first_row + rows <= image_height, "mandelbrot: empty or out-of-image rows");
    Prepared {
        kernel: KERNEL,
        workgroups: [width.div_ceil(8), rows.div_ceil(8), 1],
        inputs: vec![(BINDING_VIEW, super::words_to_bytes(&[first_row, image_height]))],
        uniform: Some((BINDING_PARAMS, uniform_block(&[width, rows, max_iter, 0]))),
        output: (BINDING_ITERS, u64::from(width) * u64::from(rows) * 4),
        work_units: work_units(u128::from(width) * u128::from(rows) * u128::from(max_iter)),
        passes: Vec::new(),
    }
}

/// The escape times `prepared` must produce, from its uniform and `View` input.
fn reference(prepared: &Prepared) -> Vec<u8> {
    let params = prepared.uniform_words();
    let view = super::bytes_to_words(prepared.input(BINDING_VIEW).expect("a mandelbrot job has a View input"));
    super::words_to_bytes(&cpu_mandelbrot_rows(params[0], params[1], params[2], view[0], view[1]))
}

/// `⌊ma · mb / 2^28⌋ mod 2^32` for magnitudes `ma`, `mb`: the kernel's 16-bit-limb algorithm,
/// operation for operation.
pub fn mul_mag_q28(ma: u32, mb: u32) -> u32 {
    let (ah, al) = (ma >> 16, ma & 0xffff);
    let (bh, bl) = (mb >> 16, mb & 0xffff);
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let cross = lh.wrapping_add(hl); // a carry out is worth 2^48
    let cross_carry = u32::from(cross < lh);
    let lo = ll.wrapping_add(cross << 16);
    let lo_carry = u32::from(lo < ll);
    let hi = hh
        .wrapping_add(cross >> 16)
        .wrapping_add(cross_carry << 16)
        .wrapping_add(lo_carry);
    (hi << 4) | (lo >> 28)
}

/// Q4.28 product: `sign(a·b) · ⌊|a|·|b| / 2^28⌋`, modulo 2^32 (magnitude truncated toward
/// zero), exactly as the kernel computes it.
pub fn mul_q28(a: i32, b: i32) -> i32 {
    let m = mul_mag_q28(a.unsigned_abs(), b.unsigned_abs());
    if (a < 0) != (b < 0) {
        m.wrapping_neg() as i32
    } else {
        m as i32
    }
}

/// The escape time of `c = cr + i·ci` (Q4.28): the number of completed iterations, at most
/// `max_iter` (see the module documentation for the exact rule).
pub fn escape_time(cr: i32, ci: i32, max_iter: u32) -> u32 {
    let (mut zr, mut zi, mut n) = (0i32, 0i32, 0u32);
    while n < max_iter {
        let (mr, mi) = (zr.unsigned_abs(), zi.unsigned_abs());
        if mr > TWO_Q28 || mi > TWO_Q28 {
            break;
        }
        let zr2 = mul_mag_q28(mr, mr);
        let zi2 = mul_mag_q28(mi, mi);
        if zr2.wrapping_add(zi2) > FOUR_Q28 {
            break;
        }
        let zri = mul_q28(zr, zi);
        zi = zri.wrapping_add(zri).wrapping_add(ci);
        zr = (zr2 as i32).wrapping_sub(zi2 as i32).wrapping_add(cr);
        n += 1;
    }
    n
}

/// The point `c = (cr, ci)` (Q4.28) sampled by pixel `(x, y)` of a `width × height` image.
pub fn pixel_c(x: u32, y: u32, width: u32, height: u32) -> (i32, i32) {
    let dx = (SPAN_X_Q28 / width) as i32;
    let dy = (SPAN_Y_Q28 / height) as i32;
    let cr = X_MIN_Q28
        .wrapping_add((x as i32).wrapping_mul(dx))
        .wrapping_add(dx / 2);
    let ci = Y_MAX_Q28
        .wrapping_sub((y as i32).wrapping_mul(dy))
        .wrapping_sub(dy / 2);
    (cr, ci)
}

/// The escape times of a whole `width × height` image, row-major (parallel over rows).
pub fn cpu_mandelbrot(width: u32, height: u32, max_iter: u32) -> Vec<u32> {
    cpu_mandelbrot_rows(width, height, max_iter, 0, height)
}

/// The escape times of rows `first_row .. first_row + rows` of a `width × image_height`
/// image, row-major (parallel over rows).
pub fn cpu_mandelbrot_rows(width: u32, rows: u32, max_iter: u32, first_row: u32, image_height: u32) -> Vec<u32> {
    let mut out = vec![0u32; width as usize * rows as usize];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(width as usize)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, px) in row.iter_mut().enumerate() {
                let (cr, ci) = pixel_c(x as u32, first_row + y as u32, width, image_height);
                *px = escape_time(cr, ci, max_iter);
            }
        });
    out
}

/// RGB8 pixels (3 bytes per pixel) for escape times: black inside the set (`n == max_iter`),
/// a smooth dark-blue → orange → yellow palette outside. Presentation only (it uses floats and
/// is not part of any commitment); the caller encodes the image.
pub fn colorize(iters: &[u32], max_iter: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(iters.len() * 3);
    for &n in iters {
        if n >= max_iter {
            out.extend_from_slice(&[0, 0, 0]);
            continue;
        }
        let t = (f64::from(n) / f64::from(max_iter)).sqrt();
        let u = 1.0 - t;
        let channel = |v: f64| (v * 255.0).round().clamp(0.0, 255.0) as u8;
        out.push(channel(9.0 * u * t * t * t));
        out.push(channel(15.0 * u * u * t * t));
        out.push(channel(8.5 * u * u * u * t));
    }
    out
}

/// Encodes escape times as an RGB8 PNG (see [`colorize`]) that a person can look at.
///
/// # Errors
/// Whatever the PNG encoder or `out` reports.
pub fn write_png<W: std::io::Write>(out: W, iters: &[u32], width: u32, height: u32, max_iter: u32) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&colorize(iters, max_iter))?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::SplitMix64;

    /// The `i64` definition the limb algorithm must match.
    fn mul_q28_i64(a: i32, b: i32) -> i32 {
        let p = i64::from(a) * i64::from(b);
        let m = p.unsigned_abs() >> 28;
        let r = if p < 0 { m.wrapping_neg() } else { m };
        r as i32
    }

    #[test]
    fn limb_magnitude_matches_u64() {
        let mut rng = SplitMix64::new(1);
        let edges = [0u32, 1, 0xffff, 0x1_0000, 1 << 28, 1 << 31, u32::MAX];
        for &a in &edges {
            for &b in &edges {
                let want = ((u64::from(a) * u64::from(b)) >> 28) as u32;
                assert_eq!(mul_mag_q28(a, b), want, "{a:#x} * {b:#x}");
            }
        }
        for _ in 0..100_000 {
            let (a, b) = (rng.next_u32(), rng.next_u32());
            let want = ((u64::from(a) * u64::from(b)) >> 28) as u32;
            assert_eq!(mul_mag_q28(a, b), want, "{a:#x} * {b:#x}");
        }
    }

    #[test]
    fn limb_product_matches_i64_reference() {
        let mut rng = SplitMix64::new(2);
        let edges = [
            0,
            1,
            -1,
            ONE_Q28,
            -ONE_Q28,
            ONE_Q28 / 3,
            -(ONE_Q28 / 3),
            i32::MAX,
            i32::MIN,
            i32::MIN + 1,
        ];
        for &a in &edges {
            for &b in &edges {
                assert_eq!(mul_q28(a, b), mul_q28_i64(a, b), "{a} * {b}");
            }
        }
        // Random pairs with |x| < 8.0 (any i32 but i32::MIN), and small ones (|x| < 2.0).
        for _ in 0..100_000 {
            let (a, b) = (rng.next_u32() as i32, rng.next_u32() as i32);
            assert_eq!(mul_q28(a, b), mul_q28_i64(a, b), "{a} * {b}");
            let (a, b) = (a >> 2, b >> 2);
            assert_eq!(mul_q28(a, b), mul_q28_i64(a, b), "{a} * {b}");
        }
        assert_eq!(mul_q28(ONE_Q28 / 2, -(3 * ONE_Q28)), -(3 * ONE_Q28 / 2));
    }

    #[test]
    fn origin_never_escapes() {
        assert_eq!(escape_time(0, 0, 1000), 1000);
        assert_eq!(escape_time(-ONE_Q28, 0, 1000), 1000); // c = -1: period-2 cycle
    }

    #[test]
    fn one_plus_i_escapes_fast() {
        // z1 = 1+i, z2 = 1+3i: |zi| > 2 → two completed iterations.
        assert_eq!(escape_time(ONE_Q28, ONE_Q28, 1000), 2);
        assert_eq!(escape_time(ONE_Q28, ONE_Q28, 1), 1);
        assert_eq!(escape_time(ONE_Q28, ONE_Q28, 0), 0);
    }

    #[test]
    fn known_pixels() {
        // 7 × 5 gives exact steps of 0.5 in both directions.
        assert_eq!(pixel_c(4, 2, 7, 5), (-ONE_Q28 / 4, 0));
        assert_eq!(pixel_c(0, 0, 7, 5), (-(9 * (ONE_Q28 / 4)), ONE_Q28));
        let img = cpu_mandelbrot(7, 5, 100);
        assert_eq!(img.len(), 35);
        assert_eq!(img[2 * 7 + 4], 100); // c = -0.25: inside
        assert_eq!(img[0], 1); // c = -2.25 + i: |zr| > 2 after one step
    }

    #[test]
    fn image_is_vertically_symmetric_with_exact_steps() {
        let (w, h) = (56, 40); // dy = 2.5/40 exactly
        let img = cpu_mandelbrot(w, h, 200);
        let (w, h) = (w as usize, h as usize);
        for y in 0..h {
            assert_eq!(
                img[y * w..(y + 1) * w],
                img[(h - 1 - y) * w..(h - y) * w],
                "row {y}"
            );
        }
        assert!(img.contains(&200));
        assert!(img.iter().any(|&n| n < 5));
    }

    #[test]
    fn prepare_sizes() {
        let m = Mandelbrot {
            width: 20,
            height: 9,
            max_iter: 64,
        };
        let p = m.prepare();
        assert_eq!(p.kernel.name, "mandelbrot");
        assert_eq!(p.input(BINDING_VIEW), Some(&super::super::words_to_bytes(&[0, 9])[..]), "the whole image");
        assert_eq!(p.workgroups, [3, 2, 1]);
        assert_eq!(p.output, (BINDING_ITERS, 20 * 9 * 4));
        let (binding, u) = p.uniform.as_ref().unwrap();
        assert_eq!(*binding, BINDING_PARAMS);
        assert_eq!(u.len() % 16, 0);
        assert_eq!(p.uniform_words(), vec![20, 9, 64, 0]);
        assert_eq!(p.work_units, 1);
        let out = m.cpu_reference(&p);
        assert_eq!(out.len() as u64, p.output.1);
        let big = Mandelbrot {
            width: 1024,
            height: 1024,
            max_iter: 256,
        };
        assert_eq!(big.prepare().work_units, 256);
    }

    #[test]
    fn strips_concatenate_to_the_whole_image() {
        let whole = Mandelbrot { width: 37, height: 28, max_iter: 96 };
        let strips: Vec<_> = (0..4).map(|i| MandelbrotTile::strip(37, 26, 96, i, 4)).collect();
        assert_eq!(strips[0].image, whole, "26 rows rounded up to a multiple of 4");
        let mut stitched = Vec::new();
        let mut shape = None;
        for (i, t) in strips.iter().enumerate() {
            let p = t.prepare();
            assert_eq!(p.input(BINDING_VIEW), Some(&super::super::words_to_bytes(&[7 * i as u32, 28])[..]));
            let s = (p.workgroups, p.uniform_words(), p.output, p.work_units);
            assert!(shape.is_none_or(|s0| s0 == s), "every strip has one shape");
            shape = Some(s);
            stitched.extend(t.cpu_reference(&p));
        }
        assert_eq!(stitched, super::super::words_to_bytes(&cpu_mandelbrot(37, 28, 96)));
        assert_eq!(MandelbrotTile::strip(37, 28, 96, 0, 1).prepare().inputs, whole.prepare().inputs, "one strip is the whole image");
    }

    #[test]
    fn colorize_sizes_and_inside_is_black() {
        let rgb = colorize(&[0, 5, 10], 10);
        assert_eq!(rgb.len(), 9);
        assert_eq!(&rgb[6..], &[0, 0, 0]);
        assert_eq!(&rgb[..3], &[0, 0, 0]); // t = 0 is black too
        assert!(rgb[3..6].iter().any(|&c| c > 0));
        assert_eq!(colorize(&[0], 0), vec![0, 0, 0]);
    }

    #[test]
    fn wgsl_matches_rust_constants() {
        for (name, v) in [
            ("X_MIN_Q28: i32 = ", X_MIN_Q28 as i64),
            ("Y_MAX_Q28: i32 = ", Y_MAX_Q28 as i64),
            ("SPAN_X_Q28: u32 = ", SPAN_X_Q28 as i64),
            ("SPAN_Y_Q28: u32 = ", SPAN_Y_Q28 as i64),
        ] {
            let start = WGSL.find(name).expect(name) + name.len();
            let lit: String = WGSL[start..]
                .chars()
                .take_while(|c| *c == '-' || c.is_ascii_digit())
                .collect();
            assert_eq!(lit.parse::<i64>().unwrap(), v, "{name}");
        }
        assert!(WGSL.contains("TWO_Q28: u32 = 0x20000000u"));
        assert!(WGSL.contains("FOUR_Q28: u32 = 0x40000000u"));
        assert!(WGSL.contains("@binding(0) var<storage, read_write>"));
        assert!(WGSL.contains("@binding(1) var<uniform>"));
    }
}

