"""kvmstack system-test bed (see bed.py): `from tests.bed import Bed`."""
from .bed import *  # noqa: F401,F403
from .bed import Bed, Host, BedError, HostCommandError, cleanup, leftovers  # noqa: F401
