//! The field tables of the stand-in kubeadm: every field of InitConfiguration,
//! ClusterConfiguration, JoinConfiguration and ResetConfiguration in kubeadm.k8s.io/v1beta3 and
//! v1beta4, transcribed from kubeadm's API reference (`cmd/kubeadm/app/apis/kubeadm/v1beta3`
//! and `v1beta4` `types.go`), independently of kiln-core's types so each checks the other.

/// What a field holds.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A string.
    Str,
    /// An integer.
    Int,
    /// A boolean.
    Bool,
    /// A Go duration string (`4m0s`).
    Duration,
    /// A list of strings.
    Strs,
    /// A map of strings to strings (v1beta3 extraArgs).
    StrMap,
    /// A map of strings to booleans (featureGates).
    BoolMap,
    /// Anything (core/v1 EnvVarSource).
    Any,
    /// A list of one shape.
    List(&'static Shape),
    /// An object with exactly these fields.
    Obj(&'static [(&'static str, Shape)]),
}

use Shape::*;

const ARGS_V4: Shape = List(&Obj(&[("name", Str), ("value", Str)]));
const TAINT: Shape = Obj(&[
    ("key", Str),
    ("value", Str),
    ("effect", Str),
    ("timeAdded", Str),
]);
const NODE_REG_V3: Shape = Obj(&[
    ("name", Str),
    ("criSocket", Str),
    ("taints", List(&TAINT)),
    ("kubeletExtraArgs", StrMap),
    ("ignorePreflightErrors", Strs),
    ("imagePullPolicy", Str),
]);
const NODE_REG_V4: Shape = Obj(&[
    ("name", Str),
    ("criSocket", Str),
    ("taints", List(&TAINT)),
    ("kubeletExtraArgs", ARGS_V4),
    ("ignorePreflightErrors", Strs),
    ("imagePullPolicy", Str),
    ("imagePullSerial", Bool),
]);
const BOOTSTRAP_TOKEN: Shape = Obj(&[
    ("token", Str),
    ("description", Str),
    ("ttl", Duration),
    ("expires", Str),
    ("usages", Strs),
    ("groups", Strs),
]);
const ENDPOINT: Shape = Obj(&[("advertiseAddress", Str), ("bindPort", Int)]);
const PATCHES: Shape = Obj(&[("directory", Str)]);
const TIMEOUTS: Shape = Obj(&[
    ("controlPlaneComponentHealthCheck", Duration),
    ("kubeletHealthCheck", Duration),
    ("kubernetesAPICall", Duration),
    ("etcdAPICall", Duration),
    ("tlsBootstrap", Duration),
    ("discovery", Duration),
    ("upgradeManifests", Duration),
]);
const TYPE_META: [(&str, Shape); 2] = [("apiVersion", Str), ("kind", Str)];

/// v1beta3 InitConfiguration.
pub const INIT_V3: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("bootstrapTokens", List(&BOOTSTRAP_TOKEN)),
    ("nodeRegistration", NODE_REG_V3),
    ("localAPIEndpoint", ENDPOINT),
    ("certificateKey", Str),
    ("skipPhases", Strs),
    ("patches", PATCHES),
]);
/// v1beta4 InitConfiguration.
pub const INIT_V4: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("bootstrapTokens", List(&BOOTSTRAP_TOKEN)),
    ("dryRun", Bool),
    ("nodeRegistration", NODE_REG_V4),
    ("localAPIEndpoint", ENDPOINT),
    ("certificateKey", Str),
    ("skipPhases", Strs),
    ("patches", PATCHES),
    ("timeouts", TIMEOUTS),
]);

const HOST_PATH: Shape = Obj(&[
    ("name", Str),
    ("hostPath", Str),
    ("mountPath", Str),
    ("readOnly", Bool),
    ("pathType", Str),
]);
const ENV_VAR: Shape = Obj(&[("name", Str), ("value", Str), ("valueFrom", Any)]);
const COMPONENT_V3: Shape = Obj(&[("extraArgs", StrMap), ("extraVolumes", List(&HOST_PATH))]);
const COMPONENT_V4: Shape = Obj(&[
    ("extraArgs", ARGS_V4),
    ("extraVolumes", List(&HOST_PATH)),
    ("extraEnvs", List(&ENV_VAR)),
]);
const API_SERVER_V3: Shape = Obj(&[
    ("extraArgs", StrMap),
    ("extraVolumes", List(&HOST_PATH)),
    ("certSANs", Strs),
    ("timeoutForControlPlane", Duration),
]);
const API_SERVER_V4: Shape = Obj(&[
    ("extraArgs", ARGS_V4),
    ("extraVolumes", List(&HOST_PATH)),
    ("extraEnvs", List(&ENV_VAR)),
    ("certSANs", Strs),
]);
const EXTERNAL_ETCD: Shape = Obj(&[
    ("endpoints", Strs),
    ("caFile", Str),
    ("certFile", Str),
    ("keyFile", Str),
]);
const ETCD_V3: Shape = Obj(&[
    (
        "local",
        Obj(&[
            ("imageRepository", Str),
            ("imageTag", Str),
            ("dataDir", Str),
            ("extraArgs", StrMap),
            ("serverCertSANs", Strs),
            ("peerCertSANs", Strs),
        ]),
    ),
    ("external", EXTERNAL_ETCD),
]);
const ETCD_V4: Shape = Obj(&[
    (
        "local",
        Obj(&[
            ("imageRepository", Str),
            ("imageTag", Str),
            ("dataDir", Str),
            ("extraArgs", ARGS_V4),
            ("extraEnvs", List(&ENV_VAR)),
            ("serverCertSANs", Strs),
            ("peerCertSANs", Strs),
        ]),
    ),
    ("external", EXTERNAL_ETCD),
]);
const NETWORKING: Shape = Obj(&[
    ("serviceSubnet", Str),
    ("podSubnet", Str),
    ("dnsDomain", Str),
]);

/// v1beta3 ClusterConfiguration.
pub const CLUSTER_V3: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("etcd", ETCD_V3),
    ("networking", NETWORKING),
    ("kubernetesVersion", Str),
    ("controlPlaneEndpoint", Str),
    ("apiServer", API_SERVER_V3),
    ("controllerManager", COMPONENT_V3),
    ("scheduler", COMPONENT_V3),
    ("dns", Obj(&[("imageRepository", Str), ("imageTag", Str)])),
    ("certificatesDir", Str),
    ("imageRepository", Str),
    ("featureGates", BoolMap),
    ("clusterName", Str),
]);
/// v1beta4 ClusterConfiguration.
pub const CLUSTER_V4: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("etcd", ETCD_V4),
    ("networking", NETWORKING),
    ("kubernetesVersion", Str),
    ("controlPlaneEndpoint", Str),
    ("apiServer", API_SERVER_V4),
    ("controllerManager", COMPONENT_V4),
    ("scheduler", COMPONENT_V4),
    (
        "dns",
        Obj(&[
            ("imageRepository", Str),
            ("imageTag", Str),
            ("disabled", Bool),
        ]),
    ),
    ("proxy", Obj(&[("disabled", Bool)])),
    ("certificatesDir", Str),
    ("imageRepository", Str),
    ("featureGates", BoolMap),
    ("clusterName", Str),
    ("encryptionAlgorithm", Str),
    ("certificateValidityPeriod", Duration),
    ("caCertificateValidityPeriod", Duration),
]);

const TOKEN_DISCOVERY: Shape = Obj(&[
    ("token", Str),
    ("apiServerEndpoint", Str),
    ("caCertHashes", Strs),
    ("unsafeSkipCAVerification", Bool),
]);
const FILE_DISCOVERY: Shape = Obj(&[("kubeConfigPath", Str)]);
const JOIN_CONTROL_PLANE: Shape = Obj(&[("localAPIEndpoint", ENDPOINT), ("certificateKey", Str)]);

/// v1beta3 JoinConfiguration.
pub const JOIN_V3: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("nodeRegistration", NODE_REG_V3),
    ("caCertPath", Str),
    (
        "discovery",
        Obj(&[
            ("bootstrapToken", TOKEN_DISCOVERY),
            ("file", FILE_DISCOVERY),
            ("tlsBootstrapToken", Str),
            ("timeout", Duration),
        ]),
    ),
    ("controlPlane", JOIN_CONTROL_PLANE),
    ("skipPhases", Strs),
    ("patches", PATCHES),
]);
/// v1beta4 JoinConfiguration.
pub const JOIN_V4: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("dryRun", Bool),
    ("nodeRegistration", NODE_REG_V4),
    ("caCertPath", Str),
    (
        "discovery",
        Obj(&[
            ("bootstrapToken", TOKEN_DISCOVERY),
            ("file", FILE_DISCOVERY),
            ("tlsBootstrapToken", Str),
        ]),
    ),
    ("controlPlane", JOIN_CONTROL_PLANE),
    ("skipPhases", Strs),
    ("patches", PATCHES),
    ("timeouts", TIMEOUTS),
]);
/// v1beta4 ResetConfiguration.
pub const RESET_V4: Shape = Obj(&[
    TYPE_META[0],
    TYPE_META[1],
    ("cleanupTmpDir", Bool),
    ("certificatesDir", Str),
    ("criSocket", Str),
    ("dryRun", Bool),
    ("force", Bool),
    ("ignorePreflightErrors", Strs),
    ("skipPhases", Strs),
    ("unmountFlags", Strs),
    ("timeouts", TIMEOUTS),
]);
