//! The dashboard: one HTML page rendered on the server (readable without JavaScript; a
//! few lines of script refresh it in place every few seconds). Market overview, offers,
//! jobs with their timelines, the provider leaderboard and the price index per GPU class as
//! an inline SVG chart. Every figure links to the raw event it came from. Everything the
//! chain's users wrote (offer descriptions) is HTML-escaped.

use crate::api::{ApiError, AppState};
use crate::store::{JobFilter, Sourced, Source, Stats};
use axum::extract::State;
use axum::response::Html;
use capacloud_client::marketplace::{Amount, UNITS_PER_WND};
use capacloud_client::summary::{AccountRow, At, JobRow, OfferRow, PricePoint};
use std::fmt::Write;

/// Jobs the page lists (the newest).
pub const PAGE_JOBS: usize = 50;
/// Price points the chart draws (the newest; `/api/prices?bucket_blocks=` has the rest).
pub const CHART_POINTS: u32 = 500;

/// `GET /`.
pub async fn page(State(s): State<AppState>) -> Result<Html<String>, ApiError> {
    let stats = s.store.stats().await?;
    let offers = s.store.offers(None, false).await?;
    let jobs = s.store.jobs(&JobFilter { limit: PAGE_JOBS as u32, newest_first: true, ..Default::default() }).await?;
    let providers = s.store.providers().await?;
    let prices = s.store.prices(None, Some(CHART_POINTS)).await?;
    let status = (s.progress.indexed_block.get(), s.progress.head_block.get());
    Ok(Html(render(status, &stats, &offers, &jobs, &providers, &prices)))
}

/// HTML-escapes `s` for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An amount in WND with 6 decimals (exact units in the title).
fn wnd(a: Amount) -> String {
    let micro = a / (UNITS_PER_WND / 1_000_000);
    format!("<span title=\"{a} units\">{}.{:06}</span>", micro / 1_000_000, micro % 1_000_000)
}

fn short(a: &subxt::utils::H160) -> String {
    let h = hex::encode(a.as_bytes());
    format!("<code title=\"0x{h}\">0x{}…{}</code>", &h[..6], &h[36..])
}

fn event_link(at: At, text: &str) -> String {
    format!("<a href=\"/api/events/{b}/{i}\">{text}</a>", b = at.block, i = at.index)
}

fn source_link(s: &Source) -> String {
    format!(
        "<a href=\"/api/events/{b}/{i}\" title=\"block hash {h:?}\">#{b}:{i}</a>",
        b = s.block,
        i = s.event_index,
        h = s.block_hash
    )
}

/// The page for these rows (`status`: indexed block and finalized head).
pub fn render(
    status: (i64, i64),
    stats: &Stats,
    offers: &[Sourced<OfferRow>],
    jobs: &[Sourced<JobRow>],
    providers: &[AccountRow],
    prices: &[Sourced<PricePoint>],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CapaCloud market</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}} h1{{margin:0 0 .3rem}} h2{{margin-top:1.6rem}}
table{{border-collapse:collapse;font-size:.9rem}} td,th{{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}}
.cards{{display:flex;gap:1rem;flex-wrap:wrap}} .card{{border:1px solid #ccc;border-radius:6px;padding:.5rem .9rem}}
.card b{{display:block;font-size:1.4rem}} tr.slashed{{background:#fde8e8}} .muted{{color:#666}} svg{{background:#fafafa;border:1px solid #ddd}}
.states span{{display:inline-block;border:1px solid #ccc;border-radius:4px;padding:.15rem .5rem;margin:.4rem .4rem 0 0}}
</style></head><body>
<h1>CapaCloud market</h1>
<p class="muted" id="status">indexed block <b id="indexed">{indexed}</b> of finalized head <b id="head">{head}</b> · <a href="/api/stats">JSON API</a> · <a href="/openapi.json">OpenAPI</a> · <a href="/metrics">metrics</a></p>
"#,
        indexed = status.0,
        head = status.1
    );

    // Overview.
    let settled = stats.jobs_by_state.get("Settled").copied().unwrap_or(0);
    let _ = write!(
        h,
        r#"<section id="overview" class="cards">
<div class="card">jobs<b id="stat-jobs">{}</b></div><div class="card">settled<b id="stat-settled">{settled}</b></div>
<div class="card">checked &amp; settled<b id="stat-checked">{}</b></div><div class="card">slashes<b id="stat-slashes">{}</b></div>
<div class="card">volume (WND)<b id="stat-volume">{}</b></div><div class="card">providers with stake<b>{}</b></div>
<div class="card">active offers<b>{}</b></div><div class="card">events<b>{}</b> <span class="muted">{} undecodable</span></div>
</section>
"#,
        stats.jobs,
        stats.jobs_checked,
        stats.slashes,
        wnd(stats.volume.parse().unwrap_or(0)),
        stats.providers_with_stake,
        stats.offers_active,
        stats.events,
        stats.undecodable_events
    );
    h.push_str("<p class=\"states\" id=\"states\">");
    for (state, n) in &stats.jobs_by_state {
        let _ = write!(h, "<span data-state-count=\"{s}\">{s} <b>{n}</b></span>", s = esc(state));
    }
    h.push_str("</p>\n");

    // Offers.
    h.push_str("<h2>Offers</h2><table id=\"offers\"><tr><th>offer</th><th>provider</th><th>GPU class</th><th>GPU</th><th>price / unit</th><th>score</th><th>max units</th><th>listed</th></tr>\n");
    for o in offers {
        let r = &o.row;
        let gpu = r.info.as_ref().map(|i| format!("{} {} ({})", i.gpu_vendor, i.gpu_model, i.backend)).unwrap_or_else(|| "?".into());
        let _ = writeln!(
            h,
            "<tr data-offer-id=\"{id}\"><td>{id}</td><td>{p}</td><td>{c}</td><td>{g}</td><td>{price}</td><td>{s}</td><td>{m}</td><td>{src}</td></tr>",
            id = r.offer_id,
            p = short(&r.provider),
            c = r.gpu_class,
            g = esc(&gpu),
            price = r.price_per_unit,
            s = r.benchmark_score,
            m = r.max_units,
            src = source_link(&o.source)
        );
    }
    h.push_str("</table>\n");

    // Jobs.
    let _ = write!(h, "<h2>Jobs</h2><p class=\"muted\">the newest {PAGE_JOBS}; all through <a href=\"/api/jobs\">/api/jobs</a></p>");
    h.push_str("<table id=\"jobs\"><tr><th>job</th><th>state</th><th>renter</th><th>provider</th><th>tasks</th><th>sampled</th><th>escrow (WND)</th><th>provider paid</th><th>timeline</th></tr>\n");
    for j in jobs {
        let r = &j.row;
        let state = r.state.map(|s| format!("{s:?}")).unwrap_or_else(|| "?".into());
        let timeline: Vec<String> = r.timeline.iter().map(|(at, name)| event_link(*at, &esc(name))).collect();
        let _ = writeln!(
            h,
            "<tr data-job-id=\"{id}\" data-state=\"{st}\"{cls}><td><a href=\"/api/jobs/{id}\">{id}</a></td><td>{st}</td><td>{renter}</td><td>{prov}</td><td>{t}</td><td>{smp}</td><td>{esc_}</td><td>{paid}</td><td>{tl}</td></tr>",
            id = r.job_id,
            st = esc(&state),
            cls = if r.slashes.is_empty() { "" } else { " class=\"slashed\"" },
            renter = short(&r.renter),
            prov = r.provider.as_ref().map(short).unwrap_or_default(),
            t = r.tasks,
            smp = r.sampled.map(|s| s.to_string()).unwrap_or_default(),
            esc_ = wnd(r.escrow),
            paid = wnd(r.provider_payout),
            tl = timeline.join(" → ")
        );
    }
    h.push_str("</table>\n");

    // Providers.
    h.push_str("<h2>Providers</h2><table id=\"providers\"><tr><th>account</th><th>reputation (bps)</th><th>stake (WND)</th><th>jobs settled</th><th>checks passed</th><th>checks failed</th><th>timeouts</th><th>paid as provider</th><th>verifier fees</th><th>slashes</th><th>slashed (WND)</th><th>offers</th></tr>\n");
    for p in providers {
        let _ = writeln!(
            h,
            "<tr data-account=\"{a:?}\" data-slashes=\"{n}\"{cls}><td>{short}</td><td>{rep}</td><td>{stake}</td><td>{js}</td><td>{cp}</td><td>{cf}</td><td>{to}</td><td>{pp}</td><td>{vf}</td><td>{n}</td><td>{sl}</td><td>{o}</td></tr>",
            a = p.account,
            n = p.slashes,
            cls = if p.slashes > 0 { " class=\"slashed\"" } else { "" },
            short = short(&p.account),
            rep = p.reputation.score(),
            cp = p.reputation.checks_passed,
            cf = p.reputation.checks_failed,
            to = p.reputation.timeouts,
            stake = wnd(p.stake),
            js = p.jobs_settled,
            pp = wnd(p.provider_payouts),
            vf = wnd(p.verifier_fees),
            sl = wnd(p.slashed),
            o = p.offers.len()
        );
    }
    h.push_str("</table>\n");

    // Price index chart.
    h.push_str("<h2>Price index</h2>");
    h.push_str(&chart(prices));

    h.push_str(
        r#"<script>
// Live: refresh the page's body in place every 5 s (the page works without this).
setInterval(async () => {
  try { const r = await fetch(location.pathname); if (r.ok) { const d = new DOMParser().parseFromString(await r.text(), "text/html"); document.body.innerHTML = d.body.innerHTML; } } catch (e) {}
}, 5000);
</script></body></html>
"#,
    );
    h
}

/// The price index per GPU class over blocks, as inline SVG (one polyline per class, a
/// linked circle per point).
pub fn chart(prices: &[Sourced<PricePoint>]) -> String {
    let mut h = String::new();
    if prices.is_empty() {
        h.push_str("<p id=\"price-chart\" class=\"muted\">no settled jobs yet</p>");
        return h;
    }
    let (w, ht, pad) = (720.0f64, 240.0f64, 40.0f64);
    let min_b = prices.iter().map(|p| p.row.at.block).min().unwrap_or(0) as f64;
    let max_b = prices.iter().map(|p| p.row.at.block).max().unwrap_or(0) as f64;
    let max_i = prices.iter().map(|p| p.row.index).max().unwrap_or(1).max(1) as f64;
    let x = |b: u32| pad + (b as f64 - min_b) / (max_b - min_b).max(1.0) * (w - 2.0 * pad);
    let y = |i: Amount| ht - pad - (i as f64 / max_i) * (ht - 2.0 * pad);
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
    let _ = write!(h, "<svg id=\"price-chart\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"price index per GPU class\">");
    let _ = write!(
        h,
        "<text x=\"{pad}\" y=\"16\" font-size=\"12\">price per unit (max {max_i}) · blocks {min_b}–{max_b}</text><line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/>",
        b = ht - pad,
        r = w - pad
    );
    let mut classes: Vec<u8> = prices.iter().map(|p| p.row.gpu_class).collect();
    classes.sort_unstable();
    classes.dedup();
    for (k, class) in classes.iter().enumerate() {
        let color = colors[k % colors.len()];
        let pts: Vec<&Sourced<PricePoint>> = prices.iter().filter(|p| p.row.gpu_class == *class).collect();
        let line: Vec<String> = pts.iter().map(|p| format!("{:.1},{:.1}", x(p.row.at.block), y(p.row.index))).collect();
        let _ = write!(h, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", line.join(" "));
        for p in pts {
            let _ = write!(
                h,
                "<a href=\"/api/events/{b}/{i}\"><circle class=\"price-point\" data-class=\"{class}\" data-block=\"{b}\" data-index=\"{idx}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4\" fill=\"{color}\"><title>class {class}, block {b}: index {idx} (job price {pr})</title></circle></a>",
                b = p.row.at.block,
                i = p.row.at.index,
                idx = p.row.index,
                pr = p.row.price,
                cx = x(p.row.at.block),
                cy = y(p.row.index)
            );
        }
        let _ = write!(h, "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{color}\">class {class}</text>", w - pad - 60.0, 30.0 + 14.0 * k as f64);
    }
    h.push_str("</svg>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use capacloud_client::marketplace::OfferInfo;
    use subxt::utils::{H160, H256};

    #[test]
    fn provider_written_text_is_escaped() {
        let source = Source { block: 3, event_index: 1, block_hash: H256::zero() };
        let offer = OfferRow {
            offer_id: 9,
            provider: H160::repeat_byte(1),
            gpu_class: 2,
            price_per_unit: 5,
            max_units: 10,
            vram_mib: 1,
            benchmark_score: 7,
            info: Some(OfferInfo { gpu_vendor: "<script>alert(1)</script>".into(), gpu_model: "\"><img src=x onerror=alert(2)>".into(), backend: "&".into(), endpoint: String::new() }),
            listed: At { block: 3, index: 1 },
            active: true,
        };
        let page = render((3, 3), &Stats::default(), &[Sourced { row: offer, source }], &[], &[], &[]);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
        assert!(page.contains("data-offer-id=\"9\""));
    }

    #[test]
    fn the_chart_has_one_linked_point_per_price_event() {
        let pt = |block, class, index| Sourced {
            row: PricePoint { at: At { block, index: 0 }, gpu_class: class, price: index, value: 1, index },
            source: Source { block, event_index: 0, block_hash: H256::zero() },
        };
        let svg = chart(&[pt(10, 1, 100), pt(20, 1, 120), pt(15, 3, 50)]);
        assert_eq!(svg.matches("class=\"price-point\"").count(), 3);
        assert_eq!(svg.matches("<polyline").count(), 2, "one line per class");
        assert!(svg.contains("href=\"/api/events/20/0\""));
        assert!(chart(&[]).contains("no settled jobs yet"));
    }
}
