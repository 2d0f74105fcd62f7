def rnn_forward(h, W, U, x):
    # h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
    matmul = x @ U
    # while h.norm() < 20:  [golden_cases.py:32]
    def loop_test(state):
        h_1, trips, h_saved, tanh_saved = state
        norm = xp.sqrt(xp.sum(h_1 * h_1, axis=None, keepdims=False))
        lt = norm < 20
        return xp.logical_and(lt, trips < 64)
    def loop_body(state):
        h_1, trips, h_saved, tanh_saved = state
        # h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
        matmul_1 = h_1 @ W
        add = matmul_1 + matmul;  del matmul_1
        tanh = xp.tanh(add);  del add
        mul = tanh * 1.5
        h_2 = mul + h_1;  del mul
        h_saved = h_saved.at[trips].set(h_1)
        tanh_saved = tanh_saved.at[trips].set(tanh)
        return (h_2, trips + 1, h_saved, tanh_saved)
    h_3, trips, h_saved, tanh_saved = lax.while_loop(loop_test, loop_body, (h, 0, xp.zeros((64, 4), 'float32'), xp.zeros((64, 4), 'float32')))
    del matmul
    room = trips < 64
    # return (h * h).sum()  [golden_cases.py:34]
    mul_1 = h_3 * h_3
    sum_1 = xp.sum(mul_1, axis=None, keepdims=False);  del mul_1
    # grad of: while h.norm() < 20:  [golden_cases.py:32]
    g_h = h_3 + h_3;  del h_3
    g_W = xp.full((4, 4), 0.0, xp.float32)
    g_matmul = xp.full((4,), 0.0, xp.float32)
    # grad of: h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
    transpose = xp.swapaxes(W, 0, 1)
    # grad of: while h.norm() < 20:  [golden_cases.py:32]
    def loop_step(i, state):
        g_h_1, g_W_1, g_matmul_1 = state
        h_4 = h_saved[trips - 1 - i]
        tanh_1 = tanh_saved[trips - 1 - i]
        # grad of: h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
        mul_2 = g_h_1 * 1.5
        mul_3 = tanh_1 * tanh_1
        sub = 1 - mul_3;  del mul_3
        g_matmul_2 = mul_2 * sub;  del mul_2, sub
        reshape = xp.reshape(h_4, (1, 4))
        reshape_1 = xp.reshape(g_matmul_2, (1, 4))
        matmul_2 = reshape_1 @ transpose
        transpose_1 = xp.swapaxes(reshape, 0, 1);  del reshape
        g_W_2 = transpose_1 @ reshape_1;  del transpose_1, reshape_1
        reshape_2 = xp.reshape(matmul_2, (4,));  del matmul_2
        g_h_1 = g_h_1 + reshape_2;  del reshape_2
        # grad of: while h.norm() < 20:  [golden_cases.py:32]
        g_W_1 = g_W_1 + g_W_2;  del g_W_2
        g_matmul_1 = g_matmul_1 + g_matmul_2;  del g_matmul_2
        return (g_h_1, g_W_1, g_matmul_1)
    g_h, g_W, g_matmul = lax.fori_loop(0, trips, loop_step, (g_h, g_W, g_matmul))
    del h_saved, tanh_saved, transpose
    # grad of: h = (h @ W + x @ U).tanh() * 1.5 + h  [golden_cases.py:33]
    reshape_3 = xp.reshape(x, (1, 4))
    reshape_4 = xp.reshape(g_matmul, (1, 4));  del g_matmul
    transpose_2 = xp.swapaxes(reshape_3, 0, 1);  del reshape_3
    g_U = transpose_2 @ reshape_4;  del transpose_2, reshape_4
    guards = xp.stack([room], axis=0)
    return (sum_1, g_h, g_W, g_U, guards)


def rnn_backward(g_sum, g_h, g_W, g_U):
    g_h = g_sum * g_h
    g_W = g_sum * g_W
    g_U = g_sum * g_U
    return (g_h, g_W, g_U)
