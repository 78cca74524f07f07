"""The documentation says what the tool does: the CLI reference page shows what `cdt -h` prints."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import CDT, clean_environ

ROOT = Path(__file__).resolve().parent.parent
CLI_PAGE = ROOT / "docs" / "cli.md"
HELP_BLOCK = re.compile(r"```text\n\$ cdt -h\n(.*?)```", re.DOTALL)


def test_the_cli_page_shows_what_cdt_h_prints(tmp_path: Path) -> None:
    # A folder without settings, as the page says: the mode line is the SQLite default's.
    printed = subprocess.run(
        [CDT, "-h"], cwd=tmp_path, env=clean_environ(), capture_output=True, text=True, check=True
    ).stdout

    [shown] = HELP_BLOCK.findall(CLI_PAGE.read_text(encoding="utf-8"))

    assert shown == printed, "docs/cli.md's help block differs from `cdt -h`: paste the new help"
