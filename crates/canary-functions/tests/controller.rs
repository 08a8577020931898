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
