"""A cnnbench run inside pytest, once the plugin is switched on: its settings, environment and
hardware class, the results as they arrive, and the judgement and report at the end.

The plugin's hooks call into this; it uses pytest only for its errors and test parameters.
"""

from __future__ import annotations

import pytest

from cnnbench.machine.devices import DEVICE_KINDS
from cnnbench.machine.environment import driver_report, fingerprint, hardware_class
from cnnbench.machine.network import network
from cnnbench.plugin.baselines import loaded_baseline
from cnnbench.ranks.pairing import Pair
from cnnbench.report.files import matplotlib_missing
from cnnbench.report.judgement import Report, data_notes, judge, profile_note
from cnnbench.results.run import AllReduce, Run
from cnnbench.settings.cases import Case
from cnnbench.settings.config import Settings
from cnnbench.settings.options import OPTION, OptionError
from cnnbench.storage.kept import history, kept_runs
from cnnbench.storage.saved import SavedRun, extra_info, result_of


class CnnbenchSession:
    def __init__(self, values: dict[str, str | None], where: dict[str, str]):
        try:
            self.settings = Settings.from_values(values, where)
        except OptionError as error:
            raise pytest.UsageError(str(error)) from None
        if self.settings.plot and (missing := matplotlib_missing(OPTION["plot"].flag)):
            raise pytest.UsageError(missing)
        self.environment = fingerprint()
        if self.settings.nodes > 1:  # the other nodes' own, as "nodes", once they have joined
            self.environment.update(node_count=self.settings.nodes, network=network())
        self.hardware = hardware_class(self.environment, self.settings.kind)
        # a run on GPUs whose names nothing could read would mix GPU models under one class
        self.identified = DEVICE_KINDS[self.settings.kind].pinned or bool(self.environment["gpus"])
        self.baseline_environment: dict | None = None
        self.baseline_elsewhere: str | None = None  # the machine id folder of a baseline another Python saved
        self.run = Run()
        self.report: Report | None = None
        self.not_saved: str | None = None

    def missing_devices(self) -> str | None:
        """Why a device set of the run is not on this machine, with what torch and the driver
        report; None where every set is here."""
        for devices in self.settings.devices:
            why = devices.unavailable(self.settings.threads_per_device)
            if why:
                kind = DEVICE_KINDS[devices.kind]
                seen = kind.report() if kind.pinned else f"{kind.report()}; {driver_report(self.environment)}"
                return (
                    f"cnnbench: {OPTION['devices'].flag} names {devices}, which this machine does not have "
                    f"({why}): {seen}; valid: the devices this machine has (a run that saves, compares or gates "
                    "fails rather than skip a set it names)"
                )
        return None

    def params(self) -> list:
        """One pytest param per case, skipped with the reason where this machine cannot run it."""
        params = []
        for case in self.settings.cases():
            reason = case.unavailable()
            params.append(pytest.param(case, id=case.id, marks=[pytest.mark.skip(reason=reason)] if reason else []))
        return params

    def record(
        self, name: str, case: Case, round_seconds: list[float], pair: Pair, all_reduce: tuple[AllReduce, ...]
    ) -> dict:
        """Add a finished benchmark to the run; returns its ``extra_info``."""
        rounds = len(round_seconds)
        references, local = pair.paired_rounds(rounds)
        group, held = pair.group, pair.held_seconds[:rounds]  # --benchmark-cprofile runs one more
        result = result_of(
            name,
            case,
            round_seconds,
            references,
            group.device_names,
            local,
            all_reduce,
            held_seconds=held,
            epoch_seconds=pair.epoch_seconds,
            compile_seconds=group.compile_seconds,
            compiled_graphs=group.compiled_graphs,
        )
        result.check()
        self.run.add(result)
        return extra_info(case, result, self.run.speedup_stats(result))

    def judge(self, benchmarks) -> Report:
        """The verdicts and the report, from this run and the baseline pytest-benchmark loaded."""
        settings = self.settings
        compared = bool(benchmarks and benchmarks.compare)
        path, saved = loaded_baseline(benchmarks) if compared else (None, [])
        baseline = SavedRun.read(path, saved, self.baseline_environment) if path else None
        notes = [self._elsewhere_note(), profile_note(settings.models), *data_notes(settings.data)]
        notes = [note for note in notes if note]
        past = None
        if settings.history_fail is not None:
            runs, skipped = kept_runs(benchmarks.storage.path) if benchmarks else ([], {})
            past = history(runs)
            notes += [f"history: skipped {path}: {why}" for path, why in skipped.items()]
        self.report = judge(
            self.run,
            baseline,
            settings.gate,
            self.environment,
            self.hardware,
            compared=compared,
            storage=str(benchmarks.storage) if benchmarks else None,
            notes=notes,
            history=past,
            accepted=settings.accept_level,
        )
        return self.report

    def _elsewhere_note(self) -> str | None:
        if self.baseline_elsewhere is None:
            return None
        return (
            f"note: the baseline was saved under another Python ({self.baseline_elsewhere}): a bare "
            "--benchmark-compare takes its hardware class's newest run whatever the Python"
        )
