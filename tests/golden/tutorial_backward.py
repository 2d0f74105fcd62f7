def out_backward(g_out, y):
    # grad of: out = z.mean()  [golden_cases.py:13]
    div = g_out / 4;  del g_out
    g_z = xp.broadcast_to(div, (2, 2));  del div
    # grad of: z = y * y * 3  [golden_cases.py:12]
    g_mul = g_z * 3;  del g_z
    mul = g_mul * y;  del g_mul, y
    # grad of: y = x + 2  [golden_cases.py:11]
    g_x = mul + mul;  del mul
    return g_x
