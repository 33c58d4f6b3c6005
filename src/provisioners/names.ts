/**
 * The provisioners by name: the `provisioner` option's choices, and the keys the registry
 * (registry.ts) must fill. Names only, so that reading the options table loads no provisioner
 * (nor execa, which the skypilot one runs `sky` with).
 */
export const PROVISIONER_NAMES = ['skypilot', 'local', 'static'] as const;

export type ProvisionerName = (typeof PROVISIONER_NAMES)[number];
