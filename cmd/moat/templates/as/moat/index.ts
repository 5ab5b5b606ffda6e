// The AssemblyScript SDK for moat policy modules (moat ABI v1,
// sdk/ABI.md). See ../README.md.

export * from "./abi";
export * from "./host";
export * from "./request";
export * from "./result";
export * from "./topic";
export * from "./json";
export { moat_abi_v1, moat_buffer, runAuthn, runAuthz, runPayload, runConfigure } from "./exports";
