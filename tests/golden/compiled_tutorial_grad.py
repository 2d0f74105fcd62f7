def tutorial_grad(x):
    # y = x + 2  [compiled_functions.py:7]
    y = x + 2
    # grad of: z = y * y * 3  [compiled_functions.py:8]
    g_mul = 0.75 * y;  del y
    # grad of: y = x + 2  [compiled_functions.py:7]
    g_x = g_mul + g_mul
    return (g_x,)
