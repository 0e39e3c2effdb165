"""The use cases, callable from Python without the CLI: run a scenario, sweep a design over
it, solve for a parameter value, write and redraw their results folders. One module each
(`run`, `sweep`, `solve`), with what they share in `common`.

    import sim
    outcome = sim.run(sim.load("scenarios/baseline.toml"), engine="tau", jobs=2)
    print(outcome.line)
    sim.write(outcome, "results/baseline")

Bad input raises `InputError` (one line per problem) or `ScenarioError`; the CLI maps them
to exit status 2. Ctrl-C raises KeyboardInterrupt with nothing half-written.
"""

from __future__ import annotations

from sim.api.common import InputError, Progress, check_engine, executor_for
from sim.api.run import RunOutcome, redraw_run, run, write
from sim.api.solve import SolveOutcome, solve, solve_range, write_solve
from sim.api.sweep import SweepOutcome, is_sweep_folder, kept_runs, redraw_sweep, sweep, sweep_plan
from sim.engines import compiled
from sim.scenario import load

__all__ = ["InputError", "Progress", "RunOutcome", "SolveOutcome", "SweepOutcome",
           "check_engine", "compiled", "executor_for", "is_sweep_folder", "kept_runs", "load",
           "redraw_run", "redraw_sweep", "run", "solve", "solve_range", "sweep", "sweep_plan",
           "write", "write_solve"]
