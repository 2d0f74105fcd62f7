"""User code whose names collide with what generated code uses."""
import transgrad as tg  # noqa: F401  (tests cite this file's line numbers)


def colliding(xp, guard):
    GuardFailed = xp * guard
    run_hook = GuardFailed.sin()
    mean = run_hook + xp
    g_xp = mean * 2
    sum = g_xp.sum()
    λ = sum * 1
    return λ


def runaway(x):
    while x.sum() > 0:  # never becomes false for positive x
        x = x + 1
    return x
