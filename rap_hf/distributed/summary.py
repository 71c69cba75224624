"""What a sharded run did, as the command's last lines: rows, errors by reason, what to do next."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ScoringSummary:
    """What a sharded run did: printed as the command's final line."""

    output: Path
    rows: int
    errors: int
    seconds: float
    rows_scored: int  # in this run, all ranks together
    already_complete: bool = False
    # rap_error reason (`rap_hf.rows.error_reason`) -> (rows, the first such row's rap_id), commonest first
    errors_by_reason: dict[str, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, merged, output: Path, seconds: float, rows_scored: int,
           already_complete: bool = False) -> ScoringSummary:
        """The summary of the merged rows `merged`, their errors counted by reason."""
        from ..rows import error_reason

        by_reason: dict[str, list] = {}
        if "rap_error" in merged.column_names:
            for rap_id, error in zip(merged["rap_id"], merged["rap_error"]):
                if error:
                    entry = by_reason.setdefault(error_reason(error), [0, str(rap_id)])
                    entry[0] += 1
        ordered = dict(sorted(((reason, (count, example)) for reason, (count, example) in by_reason.items()),
                              key=lambda item: -item[1][0]))
        errors = sum(count for count, _ in ordered.values())
        return cls(output, len(merged), errors, seconds, rows_scored, already_complete, ordered)

    @property
    def all_failed(self) -> bool:
        """Every row has rap_error: the output holds no score at all."""
        return self.rows > 0 and self.errors == self.rows

    def line(self) -> str:
        reused = self.rows - self.rows_scored
        how = ("nothing to do: the output was already complete" if self.already_complete
               else f"{self.rows_scored} scored in this run" + (f", {reused} from earlier shards" if reused else ""))
        return (f"Scored {self.rows} rows ({self.errors} with rap_error) in {self.seconds:.1f}s ({how}); "
                f"wrote {self.output}")

    def report(self) -> str:
        """`line()`, then the errors by reason (each with an example row and, where known, what to try),
        then, when every row failed, what to do before running again."""
        from ..rows import fix_for

        lines = [self.line()]
        for reason, (count, example) in self.errors_by_reason.items():
            fix = fix_for(reason)
            lines.append(f"  {count} row(s): {reason} (e.g. row {example!r})" + (f"; {fix}" if fix else ""))
        if self.all_failed:
            commonest = next(iter(self.errors_by_reason), "")
            fix = fix_for(commonest) or f"read rap_error in {self.output} for each row's reason"
            lines.append(f"Every row failed, so nothing was scored: {fix}; then run the same command with "
                         "--overwrite.")
        return "\n".join(lines)
