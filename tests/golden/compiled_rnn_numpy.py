def rnn_forward(h, W, U, x):
    # h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
    matmul = x @ U
    # while h.norm() < 20:  [golden_cases.py:32]
    h_1 = h
    trips = 0
    h_saved = []
    tanh_saved = []
    while True:
        if trips >= 125000: break
        norm = vector_norm(h_1, axis=None, keepdims=False)
        if not norm < 20: break
        # h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
        matmul_1 = h_1 @ W
        add = matmul_1 + matmul;  del matmul_1
        tanh = xp.tanh(add);  del add
        mul = tanh * 1.5
        h_2 = mul + h_1;  del mul
        h_saved.append(h_1)
        tanh_saved.append(tanh)
        h_1 = h_2
        trips += 1
    h_saved = stacked(h_saved, (4,), 'float32')
    tanh_saved = stacked(tanh_saved, (4,), 'float32')
    del matmul
    if not trips < 125000: raise GuardFailed(10)
    # return (h * h).sum()  [golden_cases.py:34]
    mul_1 = h_1 * h_1
    sum_1 = xp.add.reduce(mul_1, axis=None, keepdims=False)
    return (sum_1, h_1, h_saved, tanh_saved, W, xp.asarray(trips), x)


def rnn_backward(g_sum, h, h_saved, tanh_saved, W, trips, x):
    # grad of: return (h * h).sum()  [golden_cases.py:34]
    mul = g_sum * h
    # grad of: while h.norm() < 20:  [golden_cases.py:32]
    g_h = mul + mul;  del mul
    g_W = xp.full((4, 4), 0.0, xp.float32)
    g_matmul = xp.full((4,), 0.0, xp.float32)
    # grad of: h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
    transpose = xp.swapaxes(W, 0, 1)
    # grad of: while h.norm() < 20:  [golden_cases.py:32]
    for i in reversed(range(trips)):
        h_1 = h_saved[i]
        tanh = tanh_saved[i]
        # grad of: h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
        mul_1 = g_h * 1.5
        mul_2 = tanh * tanh
        sub = 1 - mul_2;  del mul_2
        g_matmul_1 = mul_1 * sub;  del mul_1, sub
        reshape = xp.reshape(h_1, (1, 4))
        reshape_1 = xp.reshape(g_matmul_1, (1, 4))
        matmul = reshape_1 @ transpose
        transpose_1 = xp.swapaxes(reshape, 0, 1);  del reshape
        g_W_1 = transpose_1 @ reshape_1;  del transpose_1, reshape_1
        reshape_2 = xp.reshape(matmul, (4,));  del matmul
        g_h = g_h + reshape_2;  del reshape_2
        # grad of: while h.norm() < 20:  [golden_cases.py:32]
        g_W = g_W + g_W_1;  del g_W_1
        g_matmul = g_matmul + g_matmul_1;  del g_matmul_1
    del transpose
    # grad of: h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
    reshape_3 = xp.reshape(x, (1, 4))
    reshape_4 = xp.reshape(g_matmul, (1, 4));  del g_matmul
    transpose_2 = xp.swapaxes(reshape_3, 0, 1);  del reshape_3
    g_U = transpose_2 @ reshape_4
    return (g_h, g_W, g_U)
