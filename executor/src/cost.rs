//! Bounds a kernel's work before it runs: a static upper bound on the operations one job's
//! task can execute, read from the WGSL alone, so a worker knows which kernels will certainly
//! finish within its time limit and which it must try first (`capacloud-worker`'s take check).
//!
//! # The bound
//! Every loop of a kernel runs under the loop budget ([`crate::guard`]): an iteration of a
//! loop `L` spends `cost(L)` (1 plus the loops nested in it) of an invocation's
//! [`LOOP_BUDGET`]. What an iteration executes outside its nested loops' iterations —
//! `step(L)`: its body's and continuing block's operations with calls inlined, each nested
//! loop counted by its guard only (a nested loop's iterations pay for themselves) — is
//! therefore at most `cost(L) × max_L step(L)/cost(L)` per budget unit spent, so one
//! invocation executes at most
//!
//! ```text
//! straight(entry) + LOOP_BUDGET × max over loops L of ⌈step(L) / cost(L)⌉
//! ```
//!
//! operations, where `straight(entry)` counts the entry point's code outside every loop,
//! both arms of every branch, and each call's function inlined at every call site (so a
//! call tree that fans out `k` ways `d` deep counts `k^d`, as it runs). A job's bound is
//! the sum over its dispatches of invocations × that, saturating at `u64::MAX`.
//!
//! # What an operation is
//! One emitted expression or one statement, with [`HEAVY_OP`] for atomics, barriers and
//! image accesses (they serialise or wait). The bound is a count, not a time: how fast an
//! adapter runs an operation varies (memory traffic above all), so the worker uses it only
//! to tell kernels that certainly finish from those it must try, never to price them.

use crate::guard::LOOP_BUDGET;
use crate::spec::JobSpec;
use std::collections::HashMap;
use wgpu::naga::{Block, Function, Handle, Module, ShaderStage, Statement};

/// Operations one atomic, barrier or image access counts for.
pub const HEAVY_OP: u64 = 16;

/// Operations a loop's budget guard costs (load, compare, branch, subtract, store).
const GUARD_OPS: u64 = 5;

/// A function's static figures, calls inlined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Figures {
    /// Operations outside every loop.
    straight: u64,
    /// Largest `⌈step(L) / cost(L)⌉` over the loops it contains (0 without loops).
    per_budget_unit: u64,
    /// Loops after inlining (a call counts its function's loops).
    loops: u64,
}

/// Upper bound on the operations one invocation of entry point `entry` executes (see the
/// module documentation), or `None` if `module` has no compute entry point of that name.
pub fn invocation_ops(module: &Module, entry: &str) -> Option<u64> {
    let ep = module.entry_points.iter().find(|ep| ep.name == entry && ep.stage == ShaderStage::Compute)?;
    let mut memo = HashMap::new();
    let f = figures(module, &ep.function, &mut memo);
    Some(f.straight.saturating_add(u64::from(LOOP_BUDGET).saturating_mul(f.per_budget_unit)))
}

/// Upper bound on the operations one task of `spec` executes: over every dispatch,
/// invocations (workgroups × workgroup size) × [`invocation_ops`]. `None` if a dispatch
/// names no compute entry point of `module` (the spec checker refuses that first).
pub fn task_ops(spec: &JobSpec, module: &Module) -> Option<u64> {
    let mut total: u64 = 0;
    for (entry, workgroups, _) in spec.dispatches() {
        let ep = module.entry_points.iter().find(|ep| ep.name == entry && ep.stage == ShaderStage::Compute)?;
        let invocations = workgroups
            .iter()
            .chain(ep.workgroup_size.iter())
            .fold(1u64, |n, &d| n.saturating_mul(u64::from(d)));
        total = total.saturating_add(invocations.saturating_mul(invocation_ops(module, entry)?));
    }
    Some(total)
}

fn function_figures(module: &Module, handle: Handle<Function>, memo: &mut HashMap<Handle<Function>, Figures>) -> Figures {
    if let Some(f) = memo.get(&handle) {
        return *f;
    }
    // WGSL forbids recursion; a (never validated) self-call counts as nothing.
    memo.insert(handle, Figures::default());
    let f = figures(module, &module.functions[handle], memo);
    memo.insert(handle, f);
    f
}

fn figures(module: &Module, function: &Function, memo: &mut HashMap<Handle<Function>, Figures>) -> Figures {
    block_figures(module, &function.body, memo)
}

/// `block`'s figures: `straight` is what one pass through it executes outside loops.
fn block_figures(module: &Module, block: &Block, memo: &mut HashMap<Handle<Function>, Figures>) -> Figures {
    let mut out = Figures::default();
    let add = |out: &mut Figures, f: Figures| {
        out.straight = out.straight.saturating_add(f.straight);
        out.per_budget_unit = out.per_budget_unit.max(f.per_budget_unit);
        out.loops = out.loops.saturating_add(f.loops);
    };
    for statement in block.iter() {
        let f = match statement {
            Statement::Emit(range) => Figures { straight: u64::from(range.index_range().len() as u32), ..Figures::default() },
            Statement::Block(b) => block_figures(module, b, memo),
            Statement::If { accept, reject, .. } => {
                let mut f = block_figures(module, accept, memo);
                add(&mut f, block_figures(module, reject, memo));
                f.straight = f.straight.saturating_add(1);
                f
            }
            Statement::Switch { cases, .. } => {
                let mut f = Figures { straight: 1, ..Figures::default() };
                for case in cases {
                    add(&mut f, block_figures(module, &case.body, memo));
                }
                f
            }
            Statement::Loop { body, continuing, .. } => {
                let mut inner = block_figures(module, body, memo);
                add(&mut inner, block_figures(module, continuing, memo));
                let cost = inner.loops.saturating_add(1);
                let step = inner.straight.saturating_add(GUARD_OPS);
                Figures {
                    // Entering the loop and leaving it by its guard, outside its iterations.
                    straight: GUARD_OPS,
                    per_budget_unit: inner.per_budget_unit.max(step.div_ceil(cost)),
                    loops: cost,
                }
            }
            Statement::Call { function, .. } => {
                let mut f = function_figures(module, *function, memo);
                f.straight = f.straight.saturating_add(1);
                f
            }
            Statement::Atomic { .. }
            | Statement::ImageAtomic { .. }
            | Statement::ImageStore { .. }
            | Statement::ControlBarrier(_)
            | Statement::MemoryBarrier(_)
            | Statement::WorkGroupUniformLoad { .. } => Figures { straight: HEAVY_OP, ..Figures::default() },
            _ => Figures { straight: 1, ..Figures::default() },
        };
        add(&mut out, f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(src: &str) -> Module {
        wgpu::naga::front::wgsl::parse_str(src).expect("parses")
    }

    #[test]
    fn straight_line_code_counts_once_and_a_missing_entry_is_none() {
        let m = module("@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn main() { o[0] = o[1] + o[2] * 3u; }");
        let ops = invocation_ops(&m, "main").unwrap();
        assert!(ops > 0 && ops < 20, "{ops}");
        assert_eq!(invocation_ops(&m, "other"), None);
    }

    #[test]
    fn a_loop_costs_at_most_the_budget_times_its_step() {
        let body = "x = x * 1664525u + 1013904223u;".repeat(10);
        let m = module(&format!(
            "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn main() {{ var x = o[0]; for (var i = 0u; i < 8u; i++) {{ {body} }} o[0] = x; }}"
        ));
        let ops = invocation_ops(&m, "main").unwrap();
        // Ten multiply-adds (at least 20 emitted expressions) per iteration, for the whole budget.
        assert!(ops >= u64::from(LOOP_BUDGET) * 20, "{ops}");
        assert!(ops <= u64::from(LOOP_BUDGET) * 80, "{ops}");
    }

    #[test]
    fn a_call_tree_counts_every_call_site() {
        // f1 calls f0 4 times, f2 calls f1 4 times, ... : f5 executes 4^5 copies of f0.
        let mut src = String::from("@group(0) @binding(0) var<storage, read_write> o: array<u32>;\nfn f0(x: u32) -> u32 { return x * 3u + 1u; }\n");
        for d in 1..=5 {
            src += &format!("fn f{d}(x: u32) -> u32 {{ return f{p}(f{p}(f{p}(f{p}(x)))); }}\n", p = d - 1);
        }
        src += "@compute @workgroup_size(1) fn main() { o[0] = f5(o[0]); }";
        let ops = invocation_ops(&module(&src), "main").unwrap();
        assert!(ops >= 4u64.pow(5) * 2, "{ops}");
    }

    #[test]
    fn nested_loops_are_charged_per_budget_unit_not_multiplied() {
        let m = module(
            "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn main() { var x = 0u; for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { x = x + i * j; } } o[0] = x; }",
        );
        let ops = invocation_ops(&m, "main").unwrap();
        // At most a few dozen operations per budget unit: the budget bounds both loops together.
        assert!(ops <= u64::from(LOOP_BUDGET) * 30, "{ops}");
    }

    #[test]
    fn a_task_counts_every_invocation_of_every_dispatch() {
        let src = "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(64) fn a() { o[0] = 1u; }\n@compute @workgroup_size(8, 8) fn b() { o[1] = 2u; }";
        let m = module(src);
        let mut spec = JobSpec {
            version: crate::spec::FORMAT_VERSION,
            wgsl: src.into(),
            entry_point: "a".into(),
            workgroups: [10, 1, 1],
            bindings: vec![],
            work_units: 1,
            determinism: crate::spec::Determinism::Exact,
            passes: vec![],
        };
        let (a, b) = (invocation_ops(&m, "a").unwrap(), invocation_ops(&m, "b").unwrap());
        assert_eq!(task_ops(&spec, &m), Some(640 * a));
        spec.version = crate::spec::MULTI_PASS_VERSION;
        spec.passes = vec![crate::spec::Pass { entry_point: "b".into(), workgroups: [2, 3, 1], uniform: None }];
        assert_eq!(task_ops(&spec, &m), Some(640 * a + 6 * 64 * b));
        spec.passes[0].entry_point = "missing".into();
        assert_eq!(task_ops(&spec, &m), None);
    }
}
