def y_backward(g_y):
    # grad of: y = y * 2  [golden_cases.py:20]
    g_y_1 = g_y * 2;  del g_y
    g_y_2 = g_y_1 * 2;  del g_y_1
    g_y_3 = g_y_2 * 2;  del g_y_2
    g_y_4 = g_y_3 * 2;  del g_y_3
    g_y_5 = g_y_4 * 2;  del g_y_4
    g_y_6 = g_y_5 * 2;  del g_y_5
    g_y_7 = g_y_6 * 2;  del g_y_6
    g_y_8 = g_y_7 * 2;  del g_y_7
    # grad of: y = x * 2  [golden_cases.py:18]
    g_x = g_y_8 * 2;  del g_y_8
    return g_x
