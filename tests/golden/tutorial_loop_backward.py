def y_backward(g_y):
    # grad of: y = y * 2  [golden_cases.py:20]  (8 times, folded)
    # grad of: y = x * 2  [golden_cases.py:18]
    g_x = g_y * 512
    return g_x
