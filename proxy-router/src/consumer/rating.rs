//! Bid rating: the reference's `default` scorer (`rating-config.json`, go-proxy-router.md §2.4) as pure
//! functions over the on-chain statistics, so the API's rated-bids route and session opening score
//! bids the same way.
//!
//! For one bid of provider `p` on model `m`, with `pm` = `getProviderModelStats(m, p)` and
//! `ms` = `getModelStats(m)`:
//!
//! - `tps` = normRange(z(pm.tps.mean, ms.tps), 3), `ttft` = normRange(−z(pm.ttft.mean, ms.ttft), 3),
//!   `duration` = normRange(z(pm.totalDuration, ms.totalDuration), 3), where
//!   z(x, sd) = (x − sd.mean) / √(sd.sqSum / (ms.count − 1)) (0 when that deviation is 0 or
//!   `ms.count` ≤ 1) and normRange(v, r) = clamp01((v + r) / 2r);
//! - `success` = (successCount / totalCount)², 0 without sessions;
//! - `stake` = the provider's stake placed linearly between the minimum provider stake (0) and ten
//!   times it (1), clamped;
//! - score = Σ weightᵢ · scoreᵢ divided by (pricePerSecond / 10¹⁸): cheaper bids score higher.
//!
//! [`rate`] drops bids whose provider is outside the allowlist or whose score is not finite (a zero
//! price) and sorts the rest by descending score.
//!
//! Differences from the reference, on purpose: stakes and prices are converted to floating point
//! whole (the reference took the low 64 bits of the stake, so stakes above ~18.4 MOR wrapped around);
//! the mean differences are taken in floating point (no `int64` overflow); a negative or NaN variance
//! (corrupt statistics) counts as "no spread" instead of poisoning the score; equal scores keep the
//! input order (stable sort).

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::store::{ModelStats, ProviderModelStats, Sd};

/// Prices are divided by this before dividing the score (MOR has 18 decimals).
const PRICE_SCALE: f64 = 1e18;

/// z-scores are clamped to ±this before being mapped onto [0, 1].
const Z_RANGE: f64 = 3.0;

/// Largest difference tolerated between the weights' sum and 1.
const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;

/// Why a rating configuration is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RatingError {
    /// A weight is outside [0, 1] (or not a number).
    #[error("weight `{name}` is {value}, outside [0, 1]")]
    WeightOutOfRange {
        /// The weight's key in `rating-config.json`.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The weights do not add up to 1.
    #[error("the weights sum to {sum}, not 1")]
    WeightSum {
        /// Their sum.
        sum: f64,
    },
}

/// The default scorer's weights (`params.weights` of `rating-config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Tokens per second.
    pub tps: f64,
    /// Time to first token.
    pub ttft: f64,
    /// Total duration of successful sessions.
    pub duration: f64,
    /// Share of sessions closed without dispute.
    pub success: f64,
    /// Provider stake.
    pub stake: f64,
}

impl Default for Weights {
    /// The reference's embedded default: 0.24, 0.08, 0.24, 0.32, 0.12.
    fn default() -> Self {
        Self { tps: 0.24, ttft: 0.08, duration: 0.24, success: 0.32, stake: 0.12 }
    }
}

impl Weights {
    /// Each weight in [0, 1] and their sum 1 (within 10⁻⁹, so that decimal weights such as the
    /// default ones, whose binary sum is not exactly 1, pass).
    pub fn validate(&self) -> Result<(), RatingError> {
        let named = [
            ("tps", self.tps),
            ("ttft", self.ttft),
            ("duration", self.duration),
            ("success", self.success),
            ("stake", self.stake),
        ];
        for (name, value) in named {
            if !(0.0..=1.0).contains(&value) {
                return Err(RatingError::WeightOutOfRange { name, value });
            }
        }
        let sum: f64 = named.iter().map(|(_, v)| v).sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(RatingError::WeightSum { sum });
        }
        Ok(())
    }
}

/// How bids are rated: the weights and the providers allowed (empty: all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RatingConfig {
    /// The default scorer's weights.
    pub weights: Weights,
    /// Only these providers' bids are rated; empty allows every provider.
    pub provider_allowlist: Vec<Address>,
}

impl RatingConfig {
    /// Whether bids of `provider` may be rated.
    pub fn allows(&self, provider: Address) -> bool {
        self.provider_allowlist.is_empty() || self.provider_allowlist.contains(&provider)
    }
}

/// One provider's statistics on one model (zero when it has served no session yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairStats {
    /// Mean tokens per second × 1000.
    pub tps_mean: i64,
    /// Mean time to first token, ms.
    pub ttft_mean: i64,
    /// Total duration of its successful sessions, seconds.
    pub total_duration: u32,
    /// Sessions closed without dispute.
    pub success_count: u32,
    /// Sessions closed.
    pub total_count: u32,
}

impl From<&ProviderModelStats> for PairStats {
    fn from(s: &ProviderModelStats) -> Self {
        Self {
            tps_mean: s.tps_scaled1000.mean,
            ttft_mean: s.ttft_ms.mean,
            total_duration: s.total_duration,
            success_count: s.success_count,
            total_count: s.total_count,
        }
    }
}

/// A model's statistics across its providers (zero when none has served a session yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelSpread {
    /// Tokens per second × 1000.
    pub tps: Sd,
    /// Time to first token, ms.
    pub ttft: Sd,
    /// Providers' total durations.
    pub total_duration: Sd,
    /// Observations (providers with at least one successful session).
    pub count: u32,
}

impl From<&ModelStats> for ModelSpread {
    fn from(s: &ModelStats) -> Self {
        Self { tps: s.tps_scaled1000, ttft: s.ttft_ms, total_duration: s.total_duration, count: s.count }
    }
}

/// Everything one bid is scored on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreInput {
    /// The bid's provider on the bid's model.
    pub provider_model: PairStats,
    /// The bid's model across providers.
    pub model: ModelSpread,
    /// The provider's stake.
    pub provider_stake: U256,
    /// `getProviderMinimumStake`.
    pub min_stake: U256,
    /// The bid's price, MOR wei per second.
    pub price_per_second: U256,
}

/// The five weighted components of a score, each in [0, 1], before the price adjustment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    /// Tokens per second against the model's providers.
    pub tps: f64,
    /// Time to first token against the model's providers (lower is better).
    pub ttft: f64,
    /// Total duration against the model's providers.
    pub duration: f64,
    /// Squared success ratio.
    pub success: f64,
    /// Stake between the minimum and ten times the minimum.
    pub stake: f64,
}

impl Components {
    /// The components of `input`.
    pub fn of(input: &ScoreInput) -> Self {
        let pm = &input.provider_model;
        let m = &input.model;
        Self {
            tps: norm_range(z_score(pm.tps_mean as f64, m.tps, m.count), Z_RANGE),
            ttft: norm_range(-z_score(pm.ttft_mean as f64, m.ttft, m.count), Z_RANGE),
            duration: norm_range(z_score(f64::from(pm.total_duration), m.total_duration, m.count), Z_RANGE),
            success: ratio(pm.success_count, pm.total_count).powi(2),
            stake: norm_min_max(input.provider_stake, input.min_stake),
        }
    }

    /// Σ weightᵢ · componentᵢ.
    pub fn weighted(&self, w: &Weights) -> f64 {
        w.tps * self.tps
            + w.ttft * self.ttft
            + w.duration * self.duration
            + w.success * self.success
            + w.stake * self.stake
    }
}

/// The score of one bid: the weighted components divided by the price in MOR per second. Infinite or
/// NaN for a zero price.
pub fn score(weights: &Weights, input: &ScoreInput) -> f64 {
    let price = f64::from(input.price_per_second) / PRICE_SCALE;
    Components::of(input).weighted(weights) / price
}

/// A bid to rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The bid.
    pub bid_id: B256,
    /// Its provider (checked against the allowlist).
    pub provider: Address,
    /// What it is scored on.
    pub input: ScoreInput,
}

/// A rated bid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rated {
    /// The bid.
    pub bid_id: B256,
    /// Its score (finite).
    pub score: f64,
}

/// Scores `candidates`, drops the ones outside the allowlist or with a non-finite score, and sorts the
/// rest by descending score (ties keep the input order).
pub fn rate(config: &RatingConfig, candidates: &[Candidate]) -> Vec<Rated> {
    let mut rated: Vec<Rated> = candidates
        .iter()
        .filter(|c| config.allows(c.provider))
        .map(|c| Rated { bid_id: c.bid_id, score: score(&config.weights, &c.input) })
        .filter(|r| r.score.is_finite())
        .collect();
    rated.sort_by(|a, b| b.score.total_cmp(&a.score));
    rated
}

/// (x − sd.mean) / standard deviation over `count` observations; 0 when there is no spread.
fn z_score(x: f64, sd: Sd, count: u32) -> f64 {
    let deviation = std_dev(sd, count);
    if deviation > 0.0 {
        (x - sd.mean as f64) / deviation
    } else {
        0.0
    }
}

/// √(sqSum / (count − 1)); 0 with fewer than two observations or a variance that is not positive.
fn std_dev(sd: Sd, count: u32) -> f64 {
    if count <= 1 {
        return 0.0;
    }
    let variance = sd.sq_sum as f64 / f64::from(count - 1);
    if variance > 0.0 {
        variance.sqrt()
    } else {
        0.0
    }
}

/// Maps [−range, range] linearly onto [0, 1], clamping outside.
fn norm_range(value: f64, range: f64) -> f64 {
    ((value + range) / (2.0 * range)).clamp(0.0, 1.0)
}

/// `num / denom`, 0 when `denom` is 0.
fn ratio(num: u32, denom: u32) -> f64 {
    if denom == 0 {
        0.0
    } else {
        f64::from(num) / f64::from(denom)
    }
}

/// `stake` placed between `min` (0) and `10 × min` (1), clamped; 0 when `min` is 0.
fn norm_min_max(stake: U256, min: U256) -> f64 {
    let (value, low) = (f64::from(stake), f64::from(min));
    let high = low * 10.0;
    if high == low || value < low {
        0.0
    } else if value > high {
        1.0
    } else {
        (value - low) / (high - low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOR: u128 = 1_000_000_000_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    fn input(price: u128) -> ScoreInput {
        ScoreInput {
            min_stake: U256::from(MOR / 5),
            provider_stake: U256::from(MOR / 5),
            price_per_second: U256::from(price),
            ..ScoreInput::default()
        }
    }

    #[test]
    fn default_weights_are_the_reference_ones_and_valid() {
        let w = Weights::default();
        assert_eq!((w.tps, w.ttft, w.duration, w.success, w.stake), (0.24, 0.08, 0.24, 0.32, 0.12));
        assert_eq!(w.validate(), Ok(()));
        let bad = Weights { stake: 1.5, ..w };
        assert!(matches!(bad.validate(), Err(RatingError::WeightOutOfRange { name: "stake", .. })));
        let nan = Weights { tps: f64::NAN, ..w };
        assert!(matches!(nan.validate(), Err(RatingError::WeightOutOfRange { name: "tps", .. })));
        let sum = Weights { tps: 0.5, ..w };
        assert!(matches!(sum.validate(), Err(RatingError::WeightSum { .. })));
    }

    #[test]
    fn without_statistics_a_bid_scores_the_z_midpoints_over_its_price() {
        // tps, ttft, duration at z = 0 → 0.5 each; success 0; stake at the minimum → 0.
        let expected = (0.24 + 0.08 + 0.24) * 0.5;
        let c = Components::of(&input(MOR));
        assert_eq!((c.tps, c.ttft, c.duration, c.success, c.stake), (0.5, 0.5, 0.5, 0.0, 0.0));
        assert!(close(score(&Weights::default(), &input(MOR)), expected));
        // Price 1e13 wei/s = 1e-5 MOR/s.
        assert!(close(score(&Weights::default(), &input(10_000_000_000_000)), expected / 1e-5));
    }

    #[test]
    fn components_follow_the_formulas() {
        // Model: 3 providers, tps mean 2000, sqSum 8_000_000 → variance 4_000_000, sd 2000.
        let model = ModelSpread {
            tps: Sd { mean: 2000, sq_sum: 8_000_000 },
            ttft: Sd { mean: 500, sq_sum: 20_000 },
            total_duration: Sd { mean: 100, sq_sum: 800 },
            count: 3,
        };
        let pm = PairStats {
            tps_mean: 5000,      // z = 1.5 → (1.5 + 3) / 6 = 0.75
            ttft_mean: 300,      // sd 100, z = -2 → inverted 2 → 5/6
            total_duration: 160, // sd 20, z = 3 → 1
            success_count: 3,
            total_count: 4, // 0.75² = 0.5625
        };
        let stake_input = ScoreInput {
            provider_model: pm,
            model,
            min_stake: U256::from(100u64),
            provider_stake: U256::from(550u64), // (550 - 100) / 900 = 0.5
            price_per_second: U256::from(MOR / 2),
        };
        let c = Components::of(&stake_input);
        assert!(close(c.tps, 0.75), "{c:?}");
        assert!(close(c.ttft, 5.0 / 6.0), "{c:?}");
        assert!(close(c.duration, 1.0), "{c:?}");
        assert!(close(c.success, 0.5625), "{c:?}");
        assert!(close(c.stake, 0.5), "{c:?}");
        let weighted = 0.24 * 0.75 + 0.08 * 5.0 / 6.0 + 0.24 + 0.32 * 0.5625 + 0.12 * 0.5;
        assert!(close(score(&Weights::default(), &stake_input), weighted / 0.5));

        // Beyond ±3 deviations the components clamp.
        let far = ScoreInput {
            provider_model: PairStats { tps_mean: -100_000, ttft_mean: 100_000, ..pm },
            ..stake_input
        };
        let c = Components::of(&far);
        assert_eq!((c.tps, c.ttft), (0.0, 0.0));
    }

    #[test]
    fn one_observation_or_no_spread_gives_the_midpoint() {
        let model = ModelSpread { tps: Sd { mean: 10, sq_sum: 1_000 }, count: 1, ..ModelSpread::default() };
        let i = ScoreInput {
            model,
            provider_model: PairStats { tps_mean: 99, ..PairStats::default() },
            ..input(MOR)
        };
        assert_eq!(Components::of(&i).tps, 0.5);
        // A negative sqSum (corrupt) is "no spread", not NaN.
        let model = ModelSpread { tps: Sd { mean: 10, sq_sum: -5 }, count: 4, ..ModelSpread::default() };
        let i = ScoreInput { model, ..i };
        assert_eq!(Components::of(&i).tps, 0.5);
    }

    #[test]
    fn stake_is_not_truncated_to_64_bits() {
        // 100 MOR does not fit in i64 wei; with a 1 MOR minimum it is above 10 × the minimum.
        let i =
            ScoreInput { min_stake: U256::from(MOR), provider_stake: U256::from(100 * MOR), ..input(MOR) };
        assert_eq!(Components::of(&i).stake, 1.0);
        let i = ScoreInput { provider_stake: U256::from(MOR / 2), ..i };
        assert_eq!(Components::of(&i).stake, 0.0);
        let i = ScoreInput { min_stake: U256::ZERO, ..i };
        assert_eq!(Components::of(&i).stake, 0.0);
    }

    #[test]
    fn rate_sorts_descending_and_drops_zero_prices_and_strangers() {
        let (a, b, c) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let candidates = [
            Candidate { bid_id: B256::repeat_byte(1), provider: a, input: input(3 * MOR) },
            Candidate { bid_id: B256::repeat_byte(2), provider: b, input: input(MOR) },
            Candidate { bid_id: B256::repeat_byte(3), provider: c, input: input(0) },
            Candidate { bid_id: B256::repeat_byte(4), provider: c, input: input(2 * MOR) },
        ];
        let rated = rate(&RatingConfig::default(), &candidates);
        let ids: Vec<u8> = rated.iter().map(|r| r.bid_id[0]).collect();
        assert_eq!(ids, [2, 4, 1]);
        assert!(rated.windows(2).all(|w| w[0].score > w[1].score));

        let only_a = RatingConfig { provider_allowlist: vec![a], ..RatingConfig::default() };
        let rated = rate(&only_a, &candidates);
        assert_eq!(rated.iter().map(|r| r.bid_id[0]).collect::<Vec<_>>(), [1]);
    }
}
