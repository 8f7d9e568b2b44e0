//! Fuzz target `seqkey_parse_key`: see `seq_fuzz::seqkey_parse_key`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("seqkey_parse_key", seq_fuzz::seqkey_parse_key);
