/**
 * The one contract module: workflow names and ids, queue names, signal/update/query definitions
 * and their input/result types. api/, workers/ and realtime-relay/ import names from here only.
 */
export * from './tenant-provisioning';
export * from '../temporal-config/task-queues';
export { SEARCH_ATTRIBUTES } from '../temporal-config/search-attributes';
export * from './crm';
export * from './billing';
