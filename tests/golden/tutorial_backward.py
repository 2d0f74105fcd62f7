def out_backward(g_out, y):
    # grad of: out = z.mean()  [golden_cases.py:13]
    # grad of: z = y * y * 3  [golden_cases.py:12]
    g_mul = g_out * 0.75
    g_mul = g_mul * y
    # grad of: y = x + 2  [golden_cases.py:11]
    g_x = g_mul + g_mul
    return g_x
