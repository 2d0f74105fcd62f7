import os
import sys

# the programs import their shared helpers as `import harness`
sys.path.insert(0, os.path.dirname(__file__))
