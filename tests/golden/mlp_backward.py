def loss_backward(g_loss, log_softmax_1, h, w2, x):
    # grad of: loss = -logits.log_softmax(dim=1)[:, 0].mean()  [golden_cases.py:27]
    g_mean = -g_loss
    g_div = g_mean / 4
    g_getitem = xp.broadcast_to(g_div, (4,))
    g_log_softmax = zeros_with(g_getitem, xp.s_[:, 0], shape=(4, 2), accumulate=False);  del g_getitem
    exp = xp.exp(log_softmax_1)
    g_sum = xp.add.reduce(g_log_softmax, axis=(1,), keepdims=True)
    g_mul = exp * g_sum;  del exp, g_sum
    g_logits = g_log_softmax - g_mul;  del g_log_softmax, g_mul
    # grad of: logits = h @ w2  [golden_cases.py:26]
    transpose = xp.swapaxes(w2, 0, 1)
    g_h = g_logits @ transpose;  del transpose
    transpose_1 = xp.swapaxes(h, 0, 1)
    g_w2 = transpose_1 @ g_logits;  del transpose_1, g_logits
    # grad of: h = (x @ w1).tanh()  [golden_cases.py:25]
    mul = h * h
    sub = 1 - mul;  del mul
    g_matmul = g_h * sub;  del g_h, sub
    transpose_2 = xp.swapaxes(x, 0, 1)
    g_w1 = transpose_2 @ g_matmul
    return (g_w2, g_w1)
