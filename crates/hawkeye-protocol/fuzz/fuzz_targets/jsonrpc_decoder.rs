//! The JSON-RPC decoder on any input: it never panics, a batch keeps within
//! its bound, the lazy array readers agree with serde, and every answer the
//! server would write for a request (its id echoed) is JSON a client reads.

#![no_main]

use hawkeye_protocol::jsonrpc::{
    array_items, params_object, parse_incoming, string_items, write_response, GoMetricArgs,
    Incoming, QueryParams, Request, Response, RpcError,
};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

const MAX_BATCH: usize = 8;

fn check(request: &Request<'_>) {
    let mut out = Vec::new();
    write_response(
        &mut out,
        request.dialect(),
        request.id,
        &Ok::<_, RpcError>(0),
    );
    write_response::<()>(
        &mut out,
        request.dialect(),
        request.id,
        &Err(RpcError::new(-1, "x")),
    );
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<Response>(line).expect("an answer a client can read");
    }
    let _ = params_object::<QueryParams>(request.params);
    let _ = params_object::<GoMetricArgs>(request.params);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_incoming(text, MAX_BATCH) {
        Incoming::Single(Ok(request)) => check(&request),
        Incoming::Batch(batch) => {
            assert!((1..=MAX_BATCH).contains(&batch.len()));
            let requests: Vec<_> = batch.requests().collect();
            assert_eq!(requests.len(), batch.len());
            for request in requests.iter().flatten() {
                check(request);
            }
        }
        Incoming::Single(Err(_)) | Incoming::Invalid(_) | Incoming::BatchTooLarge(_) => {}
    }
    let ours: Result<Vec<&str>, _> = array_items(text).map(|r| r.map(RawValue::get)).collect();
    // serde bounds the nesting of the whole array, the lazy reader that of
    // each item: only compare when both read it.
    if let (Ok(ours), Ok(theirs)) = (ours, serde_json::from_str::<Vec<&RawValue>>(text)) {
        let theirs: Vec<&str> = theirs.iter().map(|r| r.get()).collect();
        assert_eq!(ours, theirs);
    }
    // The string reader is given valid JSON only (the server's params have
    // been read as JSON); on that it must read what serde reads.
    let strings: Result<Vec<String>, _> = string_items(text)
        .map(|r| r.map(|s| s.into_owned()))
        .collect();
    if serde_json::from_str::<&RawValue>(text).is_ok() {
        match serde_json::from_str::<Vec<String>>(text) {
            Ok(theirs) => assert_eq!(strings.expect("an array of strings"), theirs),
            Err(_) => assert!(strings.is_err(), "not an array of strings: {text:?}"),
        }
    }
});
