//! Makes a kernel's loops end the same way on every adapter: a per-invocation loop budget
//! compiled into every loop of the module (the determinism rule for `Exact` kernels).
//!
//! # Why
//! lavapipe (Mesa's llvmpipe, the software Vulkan adapter) silently leaves a loop after 65,535
//! iterations. Its limiter is one counter per SIMD group of invocations (8 lanes on AVX2,
//! up to 16), set once per shader invocation and decremented on every back-edge of *every*
//! loop while any lane of the group is still in it. A kernel that loops longer computes a
//! different result there than on a GPU, so an honest provider and an honest verifier on
//! different adapters would disagree, and one of them would be slashed.
//!
//! lavapipe does not skip code that no lane of the group runs: a loop inside an untaken
//! branch (or after every lane has left by `break`/`return`) still costs it one back-edge
//! each time the group passes it (measured: `tests/loops.rs`).
//!
//! # The rule
//! Each loop has a *cost*: 1 plus the number of loops nested inside it at any depth,
//! counting the loops of every function it calls (lavapipe inlines calls). Every loop body of
//! an `Exact` kernel starts with
//!
//! ```wgsl
//! if (budget < COST) { break; }
//! budget = budget - COST;
//! ```
//!
//! where `budget` is a private (per-invocation) variable that starts at [`LOOP_BUDGET`]. An
//! invocation's loop-body entries thus cost at most [`LOOP_BUDGET`] in all; a loop whose
//! cost no longer fits exits at the top of that iteration. This is part of the execution
//! semantics on every adapter, so a kernel that spends its budget gets the same (cut) result
//! everywhere. The spec checker refuses an entry point with more than [`MAX_LOOPS`] loops
//! after inlining ([`check`]).
//!
//! Why lavapipe never cuts a budgeted kernel: each back-edge of a SIMD group is either an
//! iteration some lane entered (that lane paid 1 for it) or a pass over a loop no lane runs.
//! Such a pass happens inside an iteration of an enclosing loop that some lane paid for,
//! and costs at most the loops nested in it, which that lane paid too; or outside every loop,
//! at most [`MAX_LOOPS`] in all. So a group of `W ≤ 16` lanes makes at most
//! `16 × LOOP_BUDGET + MAX_LOOPS = 65,024 < 65,535` back-edges. Renters whose kernels need
//! more iterations per invocation split the work across more invocations or passes; the
//! library's sizes are bounded so that its kernels never reach the budget.

use std::collections::HashMap;
use wgpu::naga;
use wgpu::naga::{
    AddressSpace, BinaryOperator, Block, Expression, Function, GlobalVariable, Handle, Literal,
    Module, Scalar, Span, Statement, Type, TypeInner,
};

/// Loop cost an invocation may spend (see the module documentation).
pub const LOOP_BUDGET: u32 = 4_000;

/// Loops an entry point may contain, counting each call's loops at every call site.
pub const MAX_LOOPS: usize = 1_024;

/// Name of the private variable that holds the budget.
pub const BUDGET_VARIABLE: &str = "capacloud_loop_budget";

/// An entry point with more loops (after inlining) than [`MAX_LOOPS`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry point `{entry}` has {loops} loops counting each call's loops, more than the {max} allowed")]
pub struct TooManyLoops {
    pub entry: String,
    pub loops: usize,
    pub max: usize,
}

/// The determinism rule's static part: every entry point has at most [`MAX_LOOPS`] loops,
/// counting the loops of each called function at every call site.
///
/// # Errors
/// [`TooManyLoops`] naming the first entry point over the limit.
pub fn check(module: &Module) -> Result<(), TooManyLoops> {
    let per_function = loops_per_function(module);
    for ep in &module.entry_points {
        let loops = inlined_loops(&ep.function.body, &per_function);
        if loops > MAX_LOOPS {
            return Err(TooManyLoops {
                entry: ep.name.clone(),
                loops,
                max: MAX_LOOPS,
            });
        }
    }
    Ok(())
}

/// Instruments every loop in `module` (entry points and helper functions) with the loop
/// budget; returns how many loops it instrumented. A module without loops is left as it is.
pub fn bound_loops(module: &mut Module) -> usize {
    let per_function = loops_per_function(module);
    // Each function's own loops: against an empty map a call counts for nothing.
    let own = HashMap::new();
    let loops = module
        .functions
        .iter()
        .map(|(_, f)| inlined_loops(&f.body, &own))
        .sum::<usize>()
        + module
            .entry_points
            .iter()
            .map(|ep| inlined_loops(&ep.function.body, &own))
            .sum::<usize>();
    if loops == 0 {
        return 0;
    }
    let u32_ty = module.types.insert(
        Type {
            name: None,
            inner: TypeInner::Scalar(Scalar::U32),
        },
        Span::UNDEFINED,
    );
    let init = module.global_expressions.append(
        Expression::Literal(Literal::U32(LOOP_BUDGET)),
        Span::UNDEFINED,
    );
    let budget = module.global_variables.append(
        GlobalVariable {
            name: Some(BUDGET_VARIABLE.to_string()),
            space: AddressSpace::Private,
            binding: None,
            ty: u32_ty,
            init: Some(init),
            memory_decorations: Default::default(),
        },
        Span::UNDEFINED,
    );
    for (_, function) in module.functions.iter_mut() {
        instrument_function(function, budget, &per_function);
    }
    for ep in module.entry_points.iter_mut() {
        instrument_function(&mut ep.function, budget, &per_function);
    }
    loops
}

/// Loops of each function after inlining its calls (WGSL has no recursion).
fn loops_per_function(module: &Module) -> HashMap<Handle<Function>, usize> {
    let mut per_function = HashMap::new();
    for (handle, _) in module.functions.iter() {
        loops_of(module, handle, &mut per_function);
    }
    per_function
}

fn loops_of(
    module: &Module,
    handle: Handle<Function>,
    memo: &mut HashMap<Handle<Function>, usize>,
) -> usize {
    if let Some(&n) = memo.get(&handle) {
        return n;
    }
    let mut callees = Vec::new();
    calls(&module.functions[handle].body, &mut callees);
    for callee in callees {
        if callee != handle {
            loops_of(module, callee, memo);
        }
    }
    let n = inlined_loops(&module.functions[handle].body, memo);
    memo.insert(handle, n);
    n
}

fn calls(block: &Block, out: &mut Vec<Handle<Function>>) {
    for s in block.iter() {
        match s {
            Statement::Call { function, .. } => out.push(*function),
            Statement::Loop {
                body, continuing, ..
            } => {
                calls(body, out);
                calls(continuing, out);
            }
            Statement::Block(b) => calls(b, out),
            Statement::If { accept, reject, .. } => {
                calls(accept, out);
                calls(reject, out);
            }
            Statement::Switch { cases, .. } => cases.iter().for_each(|c| calls(&c.body, out)),
            _ => {}
        }
    }
}

/// Loops in `block` at any depth, each call counted with its function's loops.
fn inlined_loops(block: &Block, per_function: &HashMap<Handle<Function>, usize>) -> usize {
    block
        .iter()
        .map(|s| match s {
            Statement::Loop {
                body, continuing, ..
            } => 1 + inlined_loops(body, per_function) + inlined_loops(continuing, per_function),
            Statement::Call { function, .. } => per_function.get(function).copied().unwrap_or(0),
            Statement::Block(b) => inlined_loops(b, per_function),
            Statement::If { accept, reject, .. } => {
                inlined_loops(accept, per_function) + inlined_loops(reject, per_function)
            }
            Statement::Switch { cases, .. } => cases
                .iter()
                .map(|c| inlined_loops(&c.body, per_function))
                .sum(),
            _ => 0,
        })
        .sum()
}

fn instrument_function(
    function: &mut Function,
    budget: Handle<GlobalVariable>,
    per_function: &HashMap<Handle<Function>, usize>,
) {
    let mut body = std::mem::take(&mut function.body);
    instrument_block(&mut body, function, budget, per_function);
    function.body = body;
}

fn instrument_block(
    block: &mut Block,
    function: &mut Function,
    budget: Handle<GlobalVariable>,
    per_function: &HashMap<Handle<Function>, usize>,
) {
    for (statement, _) in block.span_iter_mut() {
        match statement {
            Statement::Loop {
                body, continuing, ..
            } => {
                let cost =
                    1 + inlined_loops(body, per_function) + inlined_loops(continuing, per_function);
                instrument_block(body, function, budget, per_function);
                instrument_block(continuing, function, budget, per_function);
                // At most MAX_LOOPS for a kernel that passed `check`; saturate for one that did not.
                let guarded = guard(function, budget, u32::try_from(cost).unwrap_or(u32::MAX));
                let rest = std::mem::take(body);
                *body = guarded;
                body.extend_block(rest);
            }
            Statement::Block(b) => instrument_block(b, function, budget, per_function),
            Statement::If { accept, reject, .. } => {
                instrument_block(accept, function, budget, per_function);
                instrument_block(reject, function, budget, per_function);
            }
            Statement::Switch { cases, .. } => {
                for case in cases.iter_mut() {
                    instrument_block(&mut case.body, function, budget, per_function);
                }
            }
            _ => {}
        }
    }
}

/// `if (budget < cost) { break; } budget = budget - cost;` in `function`'s expression arena.
fn guard(function: &mut Function, budget: Handle<GlobalVariable>, cost: u32) -> Block {
    let exprs = &mut function.expressions;
    let span = Span::UNDEFINED;
    // Expressions that need no `Emit` first, then the emitted ones in one contiguous run each.
    let pointer = exprs.append(Expression::GlobalVariable(budget), span);
    let cost = exprs.append(Expression::Literal(Literal::U32(cost)), span);
    let value = exprs.append(Expression::Load { pointer }, span);
    let short = exprs.append(
        Expression::Binary {
            op: BinaryOperator::Less,
            left: value,
            right: cost,
        },
        span,
    );
    let left = exprs.append(
        Expression::Binary {
            op: BinaryOperator::Subtract,
            left: value,
            right: cost,
        },
        span,
    );
    let mut block = Block::new();
    block.push(
        Statement::Emit(naga::Range::new_from_bounds(value, short)),
        span,
    );
    block.push(
        Statement::If {
            condition: short,
            accept: Block::from_vec(vec![Statement::Break]),
            reject: Block::new(),
        },
        span,
    );
    block.push(
        Statement::Emit(naga::Range::new_from_bounds(left, left)),
        span,
    );
    block.push(
        Statement::Store {
            pointer,
            value: left,
        },
        span,
    );
    block
}
