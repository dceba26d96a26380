//! Task batches on a real wgpu device (lavapipe in CI): a batch streamed through one
//! compiled kernel and two sets of buffers gives every task exactly the output and
//! commitment of that task run on its own, in task order, and stops at the first bad task.

use capacloud_executor::batch::{execute_batch, execute_batch_with, IN_FLIGHT};
use capacloud_executor::exec::{self, ExecError, ExecLimits};
use capacloud_executor::spec::{sha256, BindingKind, JobSpec};
use capacloud_executor::workloads;
use std::collections::BTreeMap;

mod common;
use common::{gpu, multi_pass_spec};

/// Task `t`'s input for [`multi_pass_spec`]: 256 words t·1000 + i.
fn multi_pass_input(t: u32) -> BTreeMap<u32, Vec<u8>> {
    BTreeMap::from([(0, (0u32..256).flat_map(|i| (t * 1000 + i).to_le_bytes()).collect())])
}

/// `spec` with its input references set to `inputs`' hashes: the task as a job of its own.
fn alone(spec: &JobSpec, inputs: &BTreeMap<u32, Vec<u8>>) -> JobSpec {
    let mut s = spec.clone();
    for b in &mut s.bindings {
        if let BindingKind::Input(r) = &mut b.kind {
            r.sha256 = sha256(&inputs[&b.binding]);
        }
    }
    s
}

/// Runs `tasks` as a batch with `in_flight` buffer sets and checks each task against its
/// own run; returns the outputs.
fn batch_equals_separate(spec: &JobSpec, tasks: &[BTreeMap<u32, Vec<u8>>], in_flight: usize) -> Vec<Vec<u8>> {
    let gpu = gpu().expect("checked by the caller");
    let limits = ExecLimits::default();
    let mut got = Vec::new();
    execute_batch_with(gpu, spec, tasks.iter().cloned(), &limits, in_flight, |i, e| {
        got.push((i, e));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("batch with {in_flight} in flight: {e}"));
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..tasks.len()).collect::<Vec<_>>(), "tasks reported in order, each once");
    for ((i, e), inputs) in got.iter().zip(tasks) {
        let own = exec::execute(gpu, &alone(spec, inputs), inputs, &limits).unwrap();
        assert!(e.output == own.output, "task {i} ({in_flight} in flight): output differs from its own run");
        assert_eq!(e.commitment, own.commitment, "task {i} ({in_flight} in flight)");
    }
    got.into_iter().map(|(_, e)| e.output).collect()
}

#[test]
fn a_streamed_batch_gives_each_task_the_output_of_its_own_run() {
    let Some(_) = gpu() else { return };
    // A library kernel (SHA-256 of 300 messages, other messages per task) and a multi-pass
    // custom kernel; 5 tasks, so that both buffer sets are reused and the last one is odd.
    let sha: Vec<_> = (0..5).map(|t| workloads::task_of("sha256", 300, 7, t, 5).unwrap().prepare().to_job()).collect();
    let sha_spec = sha[0].0.clone();
    let sha_tasks: Vec<_> = sha.into_iter().map(|(_, inputs)| inputs).collect();
    let mp_spec = multi_pass_spec(&multi_pass_input(0)[&0]);
    let mp_tasks: Vec<_> = (0..5).map(multi_pass_input).collect();
    for in_flight in [1, IN_FLIGHT, 3] {
        let outs = batch_equals_separate(&sha_spec, &sha_tasks, in_flight);
        assert!(outs.windows(2).all(|w| w[0] != w[1]), "tasks with other inputs have other outputs");
        let outs = batch_equals_separate(&mp_spec, &mp_tasks, in_flight);
        for (t, out) in outs.iter().enumerate() {
            let want: Vec<u8> = (0u32..256).flat_map(|i| ((t as u32 * 1000 + i + 1) * 15).to_le_bytes()).collect();
            assert_eq!(out, &want, "task {t}, {in_flight} in flight");
        }
    }
}

#[test]
fn a_batch_stops_at_the_first_bad_task_and_the_device_stays_usable() {
    let Some(gpu) = gpu() else { return };
    let spec = multi_pass_spec(&multi_pass_input(0)[&0]);
    let limits = ExecLimits::default();
    let run = |tasks: Vec<BTreeMap<u32, Vec<u8>>>, fail_at: Option<usize>| {
        let mut reported = Vec::new();
        let r = execute_batch(gpu, &spec, tasks, &limits, |i, _| {
            reported.push(i);
            if Some(i) == fail_at {
                return Err(ExecError::Device("the caller could not store the output".into()));
            }
            Ok(())
        });
        (r, reported)
    };
    // Task 3 of 5 is 4 bytes short: no task from 3 on is reported.
    let mut tasks: Vec<_> = (0..5).map(multi_pass_input).collect();
    tasks[3].get_mut(&0).unwrap().truncate(1020);
    let (r, reported) = run(tasks.clone(), None);
    assert!(matches!(r, Err(ExecError::InputLength { binding: 0, expected: 1024, found: 1020 })), "{r:?}");
    assert!(reported.len() < 3 && reported.iter().enumerate().all(|(k, &i)| k == i), "only a prefix before the bad task: {reported:?}");
    // Task 1 lacks its input.
    tasks[1].clear();
    let (r, reported) = run(tasks, None);
    assert!(matches!(r, Err(ExecError::MissingInput { binding: 0 })), "{r:?}");
    assert!(reported.is_empty(), "{reported:?}");
    // The caller's error stops the batch at that task.
    let (r, reported) = run((0..5).map(multi_pass_input).collect(), Some(1));
    assert!(matches!(r, Err(ExecError::Device(ref m)) if m.contains("could not store")), "{r:?}");
    assert_eq!(reported, vec![0, 1]);
    // Abandoned submissions leave the device healthy: a batch runs again in full.
    let (r, reported) = run((0..3).map(multi_pass_input).collect(), None);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(reported, vec![0, 1, 2]);
    assert!(!gpu.is_lost());
}
