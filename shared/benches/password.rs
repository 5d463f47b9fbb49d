//! Benchmarks argon2id at the default parameters (m=19456 KiB, t=2, p=1) and the password
//! policy check.
//!
//! Warm hashing, in criterion's loop:
//!
//! ```text
//! cargo bench -p lambda-auth --bench password
//! ```
//!
//! The `stock_hash_password_into` case runs `argon2::Argon2::hash_password_into`, which
//! allocates its working memory on every call, for comparison with the project's hasher,
//! which reuses it.
//!
//! The first hash in a fresh process: criterion cannot restart the process, so with
//! `PASSWORD_BENCH_FRESH=1` the binary skips criterion, times the first steps right after
//! it starts, prints one line and exits. Each run is one fresh process, so run it a few
//! times and compare "first hash" with "second hash" and with the warm figure above:
//!
//! ```text
//! for run in 1 2 3 4 5; do PASSWORD_BENCH_FRESH=1 cargo bench -p lambda-auth --bench password; done
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::Argon2;
use criterion::{Criterion, SamplingMode};
use lambda_auth::password::{normalize, Argon2Params, PasswordHasher, PasswordPolicy};

const PASSWORD: &str = "correct horse battery staple";
const SALT: &[u8; 16] = b"bench-salt-16byt";

fn main() {
    if std::env::var("PASSWORD_BENCH_FRESH").as_deref() == Ok("1") {
        measure_fresh_process();
        return;
    }

    let mut criterion = Criterion::default().configure_from_args();
    bench_argon2id(&mut criterion);
    bench_policy_check(&mut criterion);
    criterion.final_summary();
}

fn bench_argon2id(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("argon2id_default_params");
    // Each hash takes over 10 ms, so criterion's default of 100 linear samples would take
    // minutes. Twenty flat samples keep the run near a minute.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(15));

    let hasher = PasswordHasher::new(Argon2Params::default());
    let password = normalize(PASSWORD);
    group.bench_function("hash", |bencher| {
        bencher.iter(|| hasher.hash(black_box(&password)))
    });

    let phc = hasher.hash(&password);
    group.bench_function("verify", |bencher| {
        bencher.iter(|| hasher.verify(black_box(&password), black_box(&phc)))
    });

    // `Argon2::default()` is argon2id v0x13 with m=19456, t=2, p=1 in argon2 0.5.3.
    let stock = Argon2::default();
    group.bench_function("stock_hash_password_into", |bencher| {
        let mut output = [0u8; 32];
        bencher.iter(|| {
            stock
                .hash_password_into(black_box(PASSWORD.as_bytes()), SALT, &mut output)
                .unwrap()
        })
    });

    group.finish();
}

fn bench_policy_check(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("password_policy_check");
    let policy = PasswordPolicy::default();

    group.bench_function("passphrase", |bencher| {
        bencher.iter(|| policy.check(black_box(PASSWORD)))
    });

    // The slowest input found for the common-password check: the longest accepted input,
    // all digits but without a run. Every split then passes the digits-and-symbols test and
    // runs the repetition and sequence tests.
    let mut state: u32 = 0x9E37_79B9;
    let digits: String = (0..policy.max_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from_digit(state % 10, 10).unwrap()
        })
        .collect();
    assert!(policy.check(&digits).is_ok());
    group.bench_function("max_bytes_digits", |bencher| {
        bencher.iter(|| policy.check(black_box(&digits)))
    });

    group.finish();
}

/// Times the first operations of a fresh process and prints them on one line.
fn measure_fresh_process() {
    let password = normalize(PASSWORD);

    let started = Instant::now();
    let hasher = PasswordHasher::new(Argon2Params::default());
    let construction = started.elapsed();

    let first_hash = time(|| hasher.hash(&password));
    let second_hash = time(|| hasher.hash(&password));

    let stock = Argon2::default();
    let mut output = [0u8; 32];
    let stock_first = time(|| stock.hash_password_into(PASSWORD.as_bytes(), SALT, &mut output));
    let stock_second = time(|| stock.hash_password_into(PASSWORD.as_bytes(), SALT, &mut output));

    let policy = PasswordPolicy::default();
    let first_check = time(|| policy.check(PASSWORD));
    let second_check = time(|| policy.check(PASSWORD));

    println!(
        "fresh process: PasswordHasher::new {}, first hash {}, second hash {}, \
         stock first hash {}, stock second hash {}, first policy check {}, second policy check {}",
        milliseconds(construction),
        milliseconds(first_hash),
        milliseconds(second_hash),
        milliseconds(stock_first),
        milliseconds(stock_second),
        milliseconds(first_check),
        milliseconds(second_check),
    );
}

fn time<T>(operation: impl FnOnce() -> T) -> Duration {
    let started = Instant::now();
    black_box(operation());
    started.elapsed()
}

fn milliseconds(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
