def tutorial_value_and_grad(x):
    # y = x + 2  [compiled_functions.py:7]
    y = x + 2;  del x
    # z = y * y * 3  [compiled_functions.py:8]
    mul = y * y
    z = mul * 3;  del mul
    # out = z.mean()  [compiled_functions.py:9]
    out = mean(z, None, False);  del z
    # grad of: z = y * y * 3  [compiled_functions.py:8]
    mul_1 = 0.75 * y;  del y
    # grad of: y = x + 2  [compiled_functions.py:7]
    g_x = mul_1 + mul_1;  del mul_1
    return (out, g_x)
