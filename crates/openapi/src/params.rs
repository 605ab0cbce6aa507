//! The query and path parameters kube-apiserver documents on each kind of operation.

use serde_json::{json, Value};

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": ty, "uniqueItems": true},
    })
}

/// `{name}` / `{namespace}` path parameter.
pub fn path(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

/// `pretty`, listed on every path.
pub fn pretty() -> Value {
    query("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).")
}

fn dry_run() -> Value {
    query("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed")
}

fn field_manager() -> Value {
    query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.")
}

fn field_validation() -> Value {
    query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.")
}

/// Parameters of create (POST) and replace (PUT).
pub fn write() -> Vec<Value> {
    vec![dry_run(), field_manager(), field_validation()]
}

/// Parameters of patch.
pub fn patch() -> Vec<Value> {
    let mut v = write();
    v.push(query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
    v
}

/// Parameters of list (and watch through `watch=true`).
pub fn list() -> Vec<Value> {
    vec![
        query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion."),
        query("continue", "string", "The continue option should be set when retrieving more results from the server."),
        query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        query("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset"),
        query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset"),
        query("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection."),
        query("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
        query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
    ]
}

/// Parameters of delete.
pub fn delete() -> Vec<Value> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately."),
        query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error."),
        query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned."),
        query("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
    ]
}

/// Parameters of deletecollection: delete's and list's.
pub fn delete_collection() -> Vec<Value> {
    let mut v = delete();
    v.extend(
        list()
            .into_iter()
            .filter(|p| p["name"] != "watch" && p["name"] != "allowWatchBookmarks"),
    );
    v
}

/// Parameters of `pods/log`.
pub fn log() -> Vec<Value> {
    vec![
        query("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod."),
        query("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
        query("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to."),
        query("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log output."),
        query("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
        query("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs."),
        query("stream", "string", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\"."),
        query("tailLines", "integer", "If set, the number of lines from the end of the logs to show."),
        query("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
    ]
}

/// Parameters of `pods/exec` (and, without `command`, `pods/attach`).
pub fn exec(with_command: bool) -> Vec<Value> {
    let mut v = Vec::new();
    if with_command {
        v.push(query(
            "command",
            "string",
            "Command is the remote command to execute. argv array. Not executed within a shell.",
        ));
    }
    v.extend([
        query("container", "string", "Container in which to execute the command. Defaults to only container if there is only one container in the pod."),
        query("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
        query("stdin", "boolean", "Redirect the standard input stream of the pod for this call. Defaults to false."),
        query("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
        query("tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false."),
    ]);
    v
}

/// Parameters of `pods/portforward`.
pub fn portforward() -> Vec<Value> {
    vec![query(
        "ports",
        "integer",
        "List of ports to forward Required when using WebSockets",
    )]
}
