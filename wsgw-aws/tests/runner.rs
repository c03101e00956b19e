//! The runner's logging: set up with `try_init`, so an application that installed its own
//! subscriber first keeps it and nothing panics. (Each mode of the runner runs in the
//! examples' binary tests: local, Lambda under the Runtime API emulator, `invoke`.)

use lambda_runtime::tracing::subscriber;

#[test]
fn the_runners_logs_keep_a_subscriber_the_application_installed() {
    subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init()
        .expect("the application's subscriber is the first");
    // With `init` instead of `try_init`, either call would panic.
    wsgw_aws::runner::init_logs("info");
    wsgw_aws::runner::init_logs("warn");
    assert!(
        subscriber::fmt().try_init().is_err(),
        "the application's subscriber is still the one installed"
    );
}
