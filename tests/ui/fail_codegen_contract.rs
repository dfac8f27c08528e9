// Code generated for another codegen contract than the runtime implements is
// refused with both numbers, before anything it calls is looked up. (`agentd!`
// emits this guard with its compiler's contract; a newer agentd-macros beside an
// older agentd-runtime would reach this arm.)
agentd_runtime::__agentd_require_contract!(999, "greet");

fn main() {}
