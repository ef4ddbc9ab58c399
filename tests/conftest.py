import sys
from pathlib import Path

# scripts/local_stack.py is the one way the stack's processes are started, for
# `make run` and for the tests alike.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
