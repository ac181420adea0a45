"""tapjoin.py: the agent and vr tiers run each of their test files as a
process of its own; this joins what they print (TAP) into one stream,
renumbered, with the plan at the end.

    j = Joiner()
    j.run([sys.executable, 'test_x.py'], 'x')   # as often as needed
    return j.plan()                              # '1..N', the exit status
"""

import os
import re
import subprocess

RESULT = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$')
PLAN = re.compile(r'^1\.\.\d+')


class Joiner:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def run(self, cmd, name, label=None):
        """Runs 'cmd' (a test file 'name' that prints TAP), passing its
        results on renumbered ('label: ' before each description when
        given) and everything else as it is.  A file that exits non-zero
        without a failing result counts as one failure."""
        print('# %s' % name, flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        failed = 0
        for line in proc.stdout:
            line = line.rstrip('\n')
            m = RESULT.match(line)
            if m:
                self.n += 1
                if m.group(1) == 'not ok':
                    failed += 1
                print('%s %d - %s%s' % (m.group(1), self.n,
                                        label + ': ' if label else '',
                                        m.group(3)), flush=True)
            elif not PLAN.match(line):
                print(line, flush=True)
        rc = proc.wait()
        if rc != 0 and not failed:
            self.n += 1
            failed += 1
            print('not ok %d - %s exited with status %d' % (self.n, name, rc),
                  flush=True)
        self.failed += failed

    def plan(self):
        """Prints the plan; the exit status of the tier (1 when something
        failed or nothing ran)."""
        print('1..%d' % self.n, flush=True)
        return 1 if self.failed or self.n == 0 else 0
