# The bench workflow that bench/compare.sh and bench/serve-cost.sh serve (sourced
# by both, so their rows measure the same routes):
#   GET /ping    one `respond` node: runs inline on the reactor thread
#   POST /echo   bearer auth, a JSON body, a templated JSON reply: inline
#   GET /pool    /ping's reply with a `retry` table: handed to the run pool
#   GET /write   a tiny `write_file` into $1 (tmpfs), then `respond`: pooled

# The /ping route alone (also served over TLS by compare.sh).
bench_ping_route() {
    cat <<'TOML'
[[start_nodes]]
name = "ping"
source = "http"
entry_node = "pong"

[[http_routes]]
method = "GET"
path = "/ping"
start_node = "ping"

[[nodes]]
id = "pong"
type = "respond"
content_type = "text/plain"
body_template = "pong\n"
TOML
}

# The whole bench workflow; $1 is the directory /write writes into.
bench_workflow() {
    local shm="$1"
    cat <<TOML
name = "bench"

# One write target; nothing else touches files, env, the network or a shell.
[policy.fs]
write = ["$shm/**"]

[auth.bearer.bench]
tokens = ["bench-token"]

[[start_nodes]]
name = "echo"
source = "http"
entry_node = "hello"

[[start_nodes]]
name = "pool"
source = "http"
entry_node = "pooled"

[[start_nodes]]
name = "write"
source = "http"
entry_node = "path"

[[http_routes]]
method = "POST"
path = "/echo"
start_node = "echo"
auth = "bearer:bench"

[[http_routes]]
method = "GET"
path = "/pool"
start_node = "pool"

[[http_routes]]
method = "GET"
path = "/write"
start_node = "write"

[[nodes]]
id = "hello"
type = "respond"
content_type = "application/json"
body_template = "{\"hello\":{{name|json}},\"caller\":\"{{principal.kind}}\"}"

# A retry table makes a route ineligible for inline runs.
[[nodes]]
id = "pooled"
type = "respond"
content_type = "text/plain"
body_template = "pong\n"
retry = { max_attempts = 1 }

[[nodes]]
id = "path"
type = "template_render"
template = "$shm/out.txt"

[[nodes]]
id = "save"
type = "write_file"
path_from = "path.rendered"
content_from = "path.rendered"

[[nodes]]
id = "saved"
type = "respond"
content_type = "text/plain"
body_template = "saved\n"

[[edges]]
from = "path"
to = "save"

[[edges]]
from = "save"
to = "saved"

TOML
    bench_ping_route
}
