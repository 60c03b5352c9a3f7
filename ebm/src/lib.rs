//! The value side of stepwise: a Llama-family encoder on candle, the energy head, the
//! `/encode` + `/score` server, and the contrastive trainer and evaluator.
