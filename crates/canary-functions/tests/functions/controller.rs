//! The one controller binary refuses to start without a task it knows, naming the variable and the tasks.

use std::process::Command;

fn run(task: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_canary-controller"));
    command.env_remove("CANARY_TASK").env_remove("AWS_LAMBDA_RUNTIME_API");
    if let Some(task) = task {
        command.env("CANARY_TASK", task);
    }
    let output = command.output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn without_a_task_it_says_which_to_set() {
    let (ok, stderr) = run(None);
    assert!(!ok);
    assert!(stderr.contains("CANARY_TASK is not set") && stderr.contains("prepare, shift, check"), "{stderr}");
}

#[test]
fn an_unknown_task_is_named() {
    let (ok, stderr) = run(Some("promte"));
    assert!(!ok);
    assert!(stderr.contains("\"promte\", which is not a controller task"), "{stderr}");
}

/// The runtime logs each event whole at TRACE, and an approval gate's event carries its task token: asked to
/// log everything, the controller still logs the token nowhere, and everything else it is asked to.
#[test]
fn the_task_token_is_logged_at_no_level() {
    use canary_functions::serve::{EVENT_LOG_TARGET, log_filter};
    use lambda_runtime::tracing::{self, subscriber::fmt};
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = fmt().with_env_filter(log_filter(Some("trace"))).with_writer(move || writer.clone()).finish();
    // `lambda_runtime::tracing::subscriber` is tracing-subscriber; tracing's own is reached through dispatch.
    tracing::dispatcher::with_default(&tracing::Dispatch::new(subscriber), || {
        tracing::trace!(target: EVENT_LOG_TARGET, body = "{\"token\": \"AQCEAAAAKgAAAAMA-secret\"}", "raw JSON event");
        tracing::trace!(target: "canary_functions", "traced at trace level");
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("secret"), "the token was logged: {text}");
    assert!(text.contains("traced at trace level"), "TRACE was asked for: {text}");
}
