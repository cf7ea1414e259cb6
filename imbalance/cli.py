"""How every stage reports a problem: one line, a non-zero exit, nothing half-written.

Stages wrap their body in :func:`run`. Problems the user can fix raise :class:`UserError`
with a message that names the input and what to do; :func:`run` prints it as a single
``error: ...`` line on stderr and exits with status 2. Outputs are written atomically
(:mod:`imbalance.files`), so an error or a kill leaves no partial file behind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with params, data or files that the user can fix."""


def run(main: Callable[[], None], *, fast_exit: bool = False) -> None:
    """Run a stage body, turning a UserError into one line and exit status 2.

    ``fast_exit``: after success, leave with ``os._exit`` — for stages whose outputs are
    all written and closed by then, it skips TensorFlow's ~0.8 s interpreter teardown.
    """
    from imbalance.runtime import profile

    try:
        main()
        profile.mark("exit")
        if fast_exit:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except UserError as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; no output was left half-written", file=sys.stderr)
        sys.exit(130)
