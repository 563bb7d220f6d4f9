"""The compact schemas of the core v1 kinds and the apimachinery definitions (`meta.v1`, `intstr`).

Service, Secret, Namespace and the core v1 Event, with every core and meta definition they or
the other groups' kinds (`apiserver_schemas_groups`) reach: ObjectMeta, Condition, Time,
ObjectReference... Data only, in `apiserver_schema_notation`'s notation; `apiserver_schemas`
joins the parts, and tests/testapi/test_apiserver_openapi.py checks every entry against the
Kubernetes 1.32 definitions.
"""

from __future__ import annotations

from controlplane.testing.apiserver_schema_notation import (
    API_VERSION_FIELD,
    KIND_FIELD,
    METADATA_FIELD,
    ObjectSchema,
    Primitive,
)

__all__ = ["CORE_SCHEMAS"]

CORE_SCHEMAS: dict[str, Primitive | ObjectSchema] = {
    "meta.v1.Time": Primitive(
        "string:date-time",
        "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.",
    ),
    "meta.v1.OwnerReference": ObjectSchema(
        "OwnerReference contains enough information to let you identify an owning object.",
        {
            "apiVersion": "string! API version of the referent.",
            "blockOwnerDeletion": (
                'boolean If true, AND if the owner has the "foregroundDeletion" finalizer, '
                "then the owner cannot be deleted from the key-value store until this "
                "reference is removed."
            ),
            "controller": "boolean If true, this reference points to the managing controller.",
            "kind": "string! Kind of the referent.",
            "name": "string! Name of the referent.",
            "uid": "string! UID of the referent.",
        },
    ),
    "meta.v1.ObjectMeta": ObjectSchema(
        "ObjectMeta is metadata that all persisted resources must have, which includes all "
        "objects users must create.",
        {
            "annotations": (
                "map[string]string Annotations is an unstructured key value map stored with a"
                " resource that may be set by external tools to store and retrieve arbitrary "
                "metadata."
            ),
            "creationTimestamp": (
                "meta.v1.Time CreationTimestamp is a timestamp representing the server time "
                "when this object was created."
            ),
            "deletionGracePeriodSeconds": (
                "integer:int64 Number of seconds allowed for this object to gracefully "
                "terminate before it will be removed from the system."
            ),
            "deletionTimestamp": (
                "meta.v1.Time DeletionTimestamp is RFC 3339 date and time at which this "
                "resource will be deleted."
            ),
            "finalizers": "[]string Must be empty before the object is deleted from the registry.",
            "generateName": (
                "string GenerateName is an optional prefix, used by the server, to generate a"
                " unique name ONLY IF the Name field has not been provided."
            ),
            "generation": (
                "integer:int64 A sequence number representing a specific generation of the "
                "desired state."
            ),
            "labels": (
                "map[string]string Map of string keys and values that can be used to organize"
                " and categorize (scope and select) objects."
            ),
            "name": "string Name must be unique within a namespace.",
            "namespace": (
                "string Namespace defines the space within which each name must be unique."
            ),
            "ownerReferences": "[]meta.v1.OwnerReference List of objects depended by this object.",
            "resourceVersion": (
                "string An opaque value that represents the internal version of this object "
                "that can be used by clients to determine when objects have changed."
            ),
            "selfLink": (
                "string Deprecated: selfLink is a legacy read-only field that is no longer "
                "populated by the system."
            ),
            "uid": "string UID is the unique in time and space value for this object.",
        },
    ),
    "intstr.IntOrString": Primitive("string:int-or-string", ""),
    "core.v1.ServicePort": ObjectSchema(
        "ServicePort contains information on service's port.",
        {
            "appProtocol": "string The application protocol for this port.",
            "name": "string The name of this port within the service.",
            "nodePort": (
                "integer:int32 The port on each node on which this service is exposed when "
                "type is NodePort or LoadBalancer."
            ),
            "port": "integer:int32! The port that will be exposed by this service.",
            "protocol": "string The IP protocol for this port.",
            "targetPort": (
                "intstr.IntOrString Number or name of the port to access on the pods targeted"
                " by the service."
            ),
        },
    ),
    "core.v1.ClientIPConfig": ObjectSchema(
        "ClientIPConfig represents the configurations of Client IP based session affinity.",
        {
            "timeoutSeconds": (
                "integer:int32 timeoutSeconds specifies the seconds of ClientIP type session "
                "sticky time."
            ),
        },
    ),
    "core.v1.SessionAffinityConfig": ObjectSchema(
        "SessionAffinityConfig represents the configurations of session affinity.",
        {
            "clientIP": (
                "core.v1.ClientIPConfig clientIP contains the configurations of Client IP "
                "based session affinity."
            ),
        },
    ),
    "core.v1.ServiceSpec": ObjectSchema(
        "ServiceSpec describes the attributes that a user creates on a service.",
        {
            "allocateLoadBalancerNodePorts": (
                "boolean allocateLoadBalancerNodePorts defines if NodePorts will be "
                "automatically allocated for services with type LoadBalancer."
            ),
            "clusterIP": (
                "string clusterIP is the IP address of the service and is usually assigned "
                "randomly."
            ),
            "clusterIPs": (
                "[]string ClusterIPs is a list of IP addresses assigned to this service, and "
                "are usually assigned randomly."
            ),
            "externalIPs": (
                "[]string externalIPs is a list of IP addresses for which nodes in the "
                "cluster will also accept traffic for this service."
            ),
            "externalName": (
                "string externalName is the external reference that discovery mechanisms will"
                " return as an alias for this service (e.g. a DNS CNAME record)."
            ),
            "externalTrafficPolicy": (
                "string externalTrafficPolicy describes how nodes distribute service traffic "
                'they receive on one of the Service\'s "externally-facing" addresses '
                "(NodePorts, ExternalIPs, and LoadBalancer IPs)."
            ),
            "healthCheckNodePort": (
                "integer:int32 healthCheckNodePort specifies the healthcheck nodePort for the"
                " service."
            ),
            "internalTrafficPolicy": (
                "string InternalTrafficPolicy describes how nodes distribute service traffic "
                "they receive on the ClusterIP."
            ),
            "ipFamilies": (
                "[]string IPFamilies is a list of IP families (e.g. IPv4, IPv6) assigned to "
                "this service."
            ),
            "ipFamilyPolicy": (
                "string IPFamilyPolicy represents the dual-stack-ness requested or required "
                "by this Service."
            ),
            "loadBalancerClass": (
                "string loadBalancerClass is the class of the load balancer implementation "
                "this Service belongs to."
            ),
            "loadBalancerIP": "string Only applies to Service Type: LoadBalancer.",
            "loadBalancerSourceRanges": (
                "[]string If specified and supported by the platform, this will restrict "
                "traffic through the cloud-provider load-balancer will be restricted to the "
                "specified client IPs."
            ),
            "ports": "[]core.v1.ServicePort The list of ports that are exposed by this service.",
            "publishNotReadyAddresses": (
                "boolean publishNotReadyAddresses indicates that any agent which deals with "
                "endpoints for this Service should disregard any indications of "
                "ready/not-ready."
            ),
            "selector": (
                "map[string]string Route service traffic to pods with label keys and values "
                "matching this selector."
            ),
            "sessionAffinity": 'string Supports "ClientIP" and "None".',
            "sessionAffinityConfig": (
                "core.v1.SessionAffinityConfig sessionAffinityConfig contains the "
                "configurations of session affinity."
            ),
            "trafficDistribution": (
                "string TrafficDistribution offers a way to express preferences for how "
                "traffic is distributed to Service endpoints."
            ),
            "type": "string type determines how the Service is exposed.",
        },
    ),
    "meta.v1.Condition": ObjectSchema(
        "Condition contains details for one aspect of the current state of this API Resource.",
        {
            "lastTransitionTime": (
                "meta.v1.Time! lastTransitionTime is the last time the condition transitioned"
                " from one status to another."
            ),
            "message": (
                "string! message is a human readable message indicating details about the "
                "transition."
            ),
            "observedGeneration": (
                "integer:int64 observedGeneration represents the .metadata.generation that "
                "the condition was set based upon."
            ),
            "reason": (
                "string! reason contains a programmatic identifier indicating the reason for "
                "the condition's last transition."
            ),
            "status": "string! status of the condition, one of True, False, Unknown.",
            "type": "string! type of condition in CamelCase or in foo.example.com/CamelCase.",
        },
    ),
    "core.v1.PortStatus": ObjectSchema(
        "PortStatus represents the error condition of a service port",
        {
            "error": (
                "string Error is to record the problem with the service port The format of "
                "the error shall comply with the following rules: - built-in error values "
                "shall be specified in this file and those shall use CamelCase names - cloud "
                "provider specific error values must have names that comply with the format "
                "foo.example.com/CamelCase."
            ),
            "port": (
                "integer:int32! Port is the port number of the service port of which status "
                "is recorded here"
            ),
            "protocol": (
                "string! Protocol is the protocol of the service port of which status is "
                'recorded here The supported values are: "TCP", "UDP", "SCTP"'
            ),
        },
    ),
    "core.v1.LoadBalancerIngress": ObjectSchema(
        "LoadBalancerIngress represents the status of a load-balancer ingress point: traffic "
        "intended for the service should be sent to an ingress point.",
        {
            "hostname": (
                "string Hostname is set for load-balancer ingress points that are DNS based "
                "(typically AWS load-balancers)"
            ),
            "ip": (
                "string IP is set for load-balancer ingress points that are IP based "
                "(typically GCE or OpenStack load-balancers)"
            ),
            "ipMode": (
                "string IPMode specifies how the load-balancer IP behaves, and may only be "
                "specified when the ip field is specified."
            ),
            "ports": (
                "[]core.v1.PortStatus Ports is a list of records of service ports If used, "
                "every port defined in the service should have an entry in it"
            ),
        },
    ),
    "core.v1.LoadBalancerStatus": ObjectSchema(
        "LoadBalancerStatus represents the status of a load-balancer.",
        {
            "ingress": (
                "[]core.v1.LoadBalancerIngress Ingress is a list containing ingress points "
                "for the load-balancer."
            ),
        },
    ),
    "core.v1.ServiceStatus": ObjectSchema(
        "ServiceStatus represents the current status of a service.",
        {
            "conditions": "[]meta.v1.Condition Current service state",
            "loadBalancer": (
                "core.v1.LoadBalancerStatus LoadBalancer contains the current status of the "
                "load-balancer, if one is present."
            ),
        },
    ),
    "core.v1.Service": ObjectSchema(
        "Service is a named abstraction of software service (for example, mysql) consisting "
        "of local port (for example 3306) that the proxy listens on, and the selector that "
        "determines which pods will answer requests sent through the proxy.",
        {
            "apiVersion": API_VERSION_FIELD,
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
            "spec": (
                "core.v1.ServiceSpec Spec defines the behavior of a service. https://git.k8s."
                "io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and"
                "-status"
            ),
            "status": "core.v1.ServiceStatus Most recently observed status of the service.",
        },
        gvk=("", "v1", "Service"),
    ),
    "core.v1.ObjectReference": ObjectSchema(
        "ObjectReference contains enough information to let you inspect or modify the "
        "referred object.",
        {
            "apiVersion": "string API version of the referent.",
            "fieldPath": (
                "string If referring to a piece of an object instead of an entire object, "
                "this string should contain a valid JSON/Go field access statement, such as "
                "desiredState.manifest.containers[2]."
            ),
            "kind": "string Kind of the referent.",
            "name": "string Name of the referent.",
            "namespace": "string Namespace of the referent.",
            "resourceVersion": (
                "string Specific resourceVersion to which this reference is made, if any."
            ),
            "uid": "string UID of the referent.",
        },
    ),
    "core.v1.Secret": ObjectSchema(
        "Secret holds secret data of a certain type.",
        {
            "apiVersion": API_VERSION_FIELD,
            "data": "map[string]string:byte Data contains the secret data.",
            "immutable": (
                "boolean Immutable, if set to true, ensures that data stored in the Secret "
                "cannot be updated (only object metadata can be modified)."
            ),
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
            "stringData": (
                "map[string]string stringData allows specifying non-binary secret data in "
                "string form."
            ),
            "type": "string Used to facilitate programmatic handling of secret data.",
        },
        gvk=("", "v1", "Secret"),
    ),
    "core.v1.TypedLocalObjectReference": ObjectSchema(
        "TypedLocalObjectReference contains enough information to let you locate the typed "
        "referenced object inside the same namespace.",
        {
            "apiGroup": "string APIGroup is the group for the resource being referenced.",
            "kind": "string! Kind is the type of resource being referenced",
            "name": "string! Name is the name of resource being referenced",
        },
    ),
    "core.v1.NamespaceSpec": ObjectSchema(
        "NamespaceSpec describes the attributes on a Namespace.",
        {
            "finalizers": (
                "[]string Finalizers is an opaque list of values that must be empty to "
                "permanently remove object from storage."
            ),
        },
    ),
    "core.v1.NamespaceCondition": ObjectSchema(
        "NamespaceCondition contains details about state of namespace.",
        {
            "lastTransitionTime": (
                "meta.v1.Time Last time the condition transitioned from one status to another."
            ),
            "message": "string Human-readable message indicating details about last transition.",
            "reason": (
                "string Unique, one-word, CamelCase reason for the condition's last transition."
            ),
            "status": "string! Status of the condition, one of True, False, Unknown.",
            "type": "string! Type of namespace controller condition.",
        },
    ),
    "core.v1.NamespaceStatus": ObjectSchema(
        "NamespaceStatus is information about the current status of a Namespace.",
        {
            "conditions": (
                "[]core.v1.NamespaceCondition Represents the latest available observations of"
                " a namespace's current state."
            ),
            "phase": "string Phase is the current lifecycle phase of the namespace.",
        },
    ),
    "core.v1.Namespace": ObjectSchema(
        "Namespace provides a scope for Names.",
        {
            "apiVersion": API_VERSION_FIELD,
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
            "spec": "core.v1.NamespaceSpec Spec defines the behavior of the Namespace.",
            "status": "core.v1.NamespaceStatus Status describes the current status of a Namespace.",
        },
        gvk=("", "v1", "Namespace"),
    ),
    "meta.v1.MicroTime": Primitive(
        "string:date-time", "MicroTime is version of Time with microsecond level precision."
    ),
    "core.v1.EventSeries": ObjectSchema(
        "EventSeries contain information on series of events, i.e. thing that was/is "
        "happening continuously for some time.",
        {
            "count": (
                "integer:int32 Number of occurrences in this series up to the last heartbeat time"
            ),
            "lastObservedTime": "meta.v1.MicroTime Time of the last occurrence observed",
        },
    ),
    "core.v1.EventSource": ObjectSchema(
        "EventSource contains information for an event.",
        {
            "component": "string Component from which the event is generated.",
            "host": "string Node name on which the event is generated.",
        },
    ),
    "core.v1.Event": ObjectSchema(
        "Event is a report of an event somewhere in the cluster.",
        {
            "action": "string What action was taken/failed regarding to the Regarding object.",
            "apiVersion": API_VERSION_FIELD,
            "count": "integer:int32 The number of times this event has occurred.",
            "eventTime": "meta.v1.MicroTime Time when this Event was first observed.",
            "firstTimestamp": (
                "meta.v1.Time The time at which the event was first recorded. (Time of server"
                " receipt is in TypeMeta.)"
            ),
            "involvedObject": "core.v1.ObjectReference! The object that this event is about.",
            "kind": KIND_FIELD,
            "lastTimestamp": (
                "meta.v1.Time The time at which the most recent occurrence of this event was "
                "recorded."
            ),
            "message": "string A human-readable description of the status of this operation.",
            "metadata": "meta.v1.ObjectMeta! Standard object's metadata.",
            "reason": (
                "string This should be a short, machine understandable string that gives the "
                "reason for the transition into the object's current status."
            ),
            "related": (
                "core.v1.ObjectReference Optional secondary object for more complex actions."
            ),
            "reportingComponent": (
                "string Name of the controller that emitted this Event, e.g. "
                "`kubernetes.io/kubelet`."
            ),
            "reportingInstance": "string ID of the controller instance, e.g. `kubelet-xyzf`.",
            "series": (
                "core.v1.EventSeries Data about the Event series this event represents or nil"
                " if it's a singleton Event."
            ),
            "source": "core.v1.EventSource The component reporting this event.",
            "type": (
                "string Type of this event (Normal, Warning), new types could be added in the"
                " future"
            ),
        },
        gvk=("", "v1", "Event"),
    ),
}
