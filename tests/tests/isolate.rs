//! Kernels in child processes (`capacloud-worker --isolate`): the same root as in-process
//! execution and the CPU reference; a runaway kernel fails in its child while the daemon's own
//! device stays usable; a child that hangs outright is killed at the time limit.

use capacloud_executor::spec::{Binding, BindingKind, Determinism, JobSpec, FORMAT_VERSION};
use capacloud_executor::workloads::{Sha256Batch, Workload};
use capacloud_executor::{merkle, ExecLimits};
use capacloud_tests::{built_binary, gpu_or_skip};
use capacloud_worker::isolate::{self, IsolateError};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_kernels_match_and_their_failures_stay_in_the_child() {
    let test = "isolated_kernels_match_and_their_failures_stay_in_the_child";
    let Some(gpu) = gpu_or_skip(test) else { return };
    let exe = built_binary("capacloud-worker");

    // Same output and root as in process, and as the CPU reference.
    let w = Sha256Batch { messages: 1024, seed: 5 };
    let prepared = w.prepare();
    let reference = merkle::commit(&w.cpu_reference(&prepared), merkle::DEFAULT_CHUNK).root;
    let (spec, inputs) = prepared.to_job();
    let limits = ExecLimits::default();
    let (output, commitment) = isolate::execute(&exe, &spec, &inputs, &limits, isolate::STARTUP_GRACE).await.unwrap();
    assert_eq!(commitment.root, reference);
    let local = capacloud_executor::execute(&gpu, &spec, &inputs, &limits).unwrap();
    assert_eq!((local.output, local.commitment.root), (output, reference));

    // A kernel that never ends: the child's executor gives up at the limit and the child
    // reports it; this process's device is untouched and the next isolated job runs.
    let runaway = JobSpec {
        version: FORMAT_VERSION,
        wgsl: "@group(0) @binding(0) var<storage, read_write> c: array<atomic<u32>>;\n\
               @compute @workgroup_size(64)\n\
               fn main() { loop { atomicAdd(&c[0], 1u); if (atomicLoad(&c[1]) == 7u) { break; } } }\n"
            .into(),
        entry_point: "main".into(),
        workgroups: [65_535, 1, 1],
        bindings: vec![Binding { binding: 0, kind: BindingKind::Output { len: 8 } }],
        work_units: 1,
        determinism: Determinism::Exact,
        passes: vec![],
    };
    let short = ExecLimits { timeout: Duration::from_secs(2), ..ExecLimits::default() };
    match isolate::execute(&exe, &runaway, &BTreeMap::new(), &short, isolate::STARTUP_GRACE).await {
        Err(IsolateError::Failed { status, stderr }) => {
            assert!(status.contains(&isolate::EXIT_KERNEL_FAILED.to_string()), "{status}");
            assert!(stderr.contains("2s"), "the child names its time limit: {stderr}");
        }
        other => panic!("expected the child to fail, got {other:?}"),
    }
    assert!(!gpu.is_lost());
    let (again, _) = isolate::execute(&exe, &spec, &inputs, &limits, isolate::STARTUP_GRACE).await.unwrap();
    assert_eq!(merkle::commit(&again, merkle::DEFAULT_CHUNK).root, reference);

    // A child starts with a cleared environment: the daemon's secrets do not reach renter
    // kernels. (A stand-in child records its environment.)
    let dir = tempfile::tempdir().unwrap();
    let envdump = dir.path().join("env.sh");
    std::fs::write(&envdump, format!("#!/bin/sh
env > {}/env
exit 3
", dir.path().display())).unwrap();
    std::fs::set_permissions(&envdump, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // SAFETY: set before any child is spawned from this test; no other thread reads it.
    unsafe { std::env::set_var("CAPACLOUD_SURI", "//SecretTestKey") };
    let _ = isolate::execute(&envdump, &spec, &inputs, &limits, isolate::STARTUP_GRACE).await;
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert!(!env.contains("SecretTestKey") && !env.contains("CAPACLOUD_SURI"), "the child saw the key:\n{env}");
    assert!(env.lines().all(|l| isolate::PASSED_ENV.iter().any(|k| l.starts_with(&format!("{k}="))) || l.starts_with("PWD=") || l.starts_with("SHLVL=") || l.starts_with("_=")), "{env}");

    // A background child (a long trial) runs at the lowest priority, a normal one as the
    // daemon does. (A stand-in child records its nice value, field 19 of its stat.)
    let nicedump = dir.path().join("nice.sh");
    std::fs::write(&nicedump, format!("#!/bin/sh\ncut -d' ' -f19 /proc/$$/stat > {}/nice\nexit 3\n", dir.path().display())).unwrap();
    std::fs::set_permissions(&nicedump, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let daemon_nice = std::fs::read_to_string("/proc/self/stat").unwrap().rsplit_once(") ").unwrap().1.split(' ').nth(16).unwrap().to_string();
    for (priority, expected) in [(isolate::Priority::Background, isolate::BACKGROUND_NICE.to_string()), (isolate::Priority::Normal, daemon_nice)] {
        let run = isolate::execute_tasks_at(&nicedump, &spec, std::slice::from_ref(&inputs), &limits, isolate::STARTUP_GRACE, priority).await;
        assert!(matches!(run, Err(IsolateError::Failed { .. })), "{run:?}");
        assert_eq!(std::fs::read_to_string(dir.path().join("nice")).unwrap().trim(), expected, "{priority:?}");
    }

    // A child that hangs without ever reporting is killed at limit + grace.
    let hang = dir.path().join("hang.sh");
    std::fs::write(&hang, format!("#!/bin/sh\necho $$ > {}/pid\nexec sleep 600\n", dir.path().display())).unwrap();
    std::fs::set_permissions(&hang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tiny = ExecLimits { timeout: Duration::from_millis(200), ..ExecLimits::default() };
    match isolate::execute(&hang, &spec, &inputs, &tiny, Duration::from_millis(800)).await {
        Err(IsolateError::Timeout(t)) => assert_eq!(t, Duration::from_millis(1000)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    for _ in 0..50 {
        // Gone, or a zombie waiting to be reaped: either way no longer running.
        match std::fs::read_to_string(&stat) {
            Err(_) => return,
            Ok(s) if s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the hanging child {} is still running", pid.trim());
}
