//! The statistics of the verifier draw: it follows eligible stake (chi-square), and it
//! follows the stake of the snapshot, not the stake of the moment.
use super::*;

/// Eight providers with stakes 10, 20, …, 80 WND; Bob (also a provider) holds the job,
/// Django rents. Over 20,000 beacons the first draw picks each eligible provider in
/// proportion to its stake: Pearson's chi-square with 7 degrees of freedom stays below its
/// 0.1 % critical value (24.32). Deterministic: the beacons come from fixed salts.
#[ink::test]
fn the_draw_follows_eligible_stake() {
    let providers: Vec<Address> = (0..8).map(acct).collect();
    let mut m = fresh_with(&providers);
    for (i, p) in providers.iter().enumerate() {
        register(&mut m, *p, 10 * (i as Amount + 1) * WND);
    }
    register(&mut m, bob(), 200 * WND);
    list(&mut m, bob(), PRICE);
    // A latecomer whose stake was bonded after the epoch began never counts.
    advance(EPOCH);
    register(&mut m, charlie(), 500 * WND);
    let id = create(&mut m, django(), job_input(Some(0), 1, 100, BPS), &seed(1));
    as_(bob());
    m.accept_job(id).unwrap();
    provider_commit(&mut m, id, bob(), &Outputs::honest(id, 1)).unwrap();
    advance(1);
    let draws = 20_000u64;
    let mut count: BTreeMap<Address, u64> = BTreeMap::new();
    for salt in 0..draws {
        crate::test_chain::SALT.with(|s| s.set(salt));
        *count.entry(m.first_draw(id).unwrap()).or_default() += 1;
    }
    assert!(!count.contains_key(&bob()), "the provider is never its own verifier");
    assert!(!count.contains_key(&charlie()), "stake bonded after the snapshot never counts");
    let total_weight: f64 = (1..=8).map(|i| i as f64).sum();
    let mut chi2 = 0.0;
    for (i, p) in providers.iter().enumerate() {
        let expected = draws as f64 * (i + 1) as f64 / total_weight;
        let observed = count.get(p).copied().unwrap_or(0) as f64;
        chi2 += (observed - expected).powi(2) / expected;
    }
    println!("chi-square over {draws} draws, 7 df: {chi2:.2} (0.1 % critical value 24.32)");
    assert!(chi2 < 24.32, "the draw does not follow stake: chi2 = {chi2}");
}
