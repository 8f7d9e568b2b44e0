//! Fuzz target `key_reader`: see `seq_fuzz::key_reader`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("key_reader", seq_fuzz::key_reader);
