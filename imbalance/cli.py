"""How every stage reports a problem: one line, a non-zero exit, nothing half-written.

Stages wrap their body in :func:`run`. Problems the user can fix raise :class:`UserError`
with a message that names the input and what to do; :func:`run` prints it as a single
``error: ...`` line on stderr and exits with status 2. Outputs are written atomically
(:mod:`imbalance.io`), so an error or a kill leaves no partial file behind.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with params, data or files that the user can fix."""


def run(main: Callable[[], None]) -> None:
    """Run a stage body, turning a UserError into one line and exit status 2."""
    from imbalance import profile

    try:
        main()
        profile.mark("exit")
    except UserError as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; no output was left half-written", file=sys.stderr)
        sys.exit(130)
