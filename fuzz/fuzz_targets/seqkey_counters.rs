//! Fuzz target `seqkey_counters`: see `seq_fuzz::seqkey_counters`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("seqkey_counters", seq_fuzz::seqkey_counters);
