declare module 'sandflow:task/cache@0.4.0' {
  /**
   * Starts writing the value of `key`.
   */
  export function put(key: string): Writer;
  /**
   * Starts reading the value of `key`; none when there is none.
   */
  export function get(key: string): Reader | undefined;
  /**
   * Whether `key` has a value.
   */
  export function contains(key: string): boolean;
  /**
   * Deletes the value of `key`; whether it had one.
   */
  export { _delete as delete };
  function _delete(key: string): boolean;
  /**
   * The keys that start with `prefix`, in byte order, at most 1000 after
   * `start-after` (the last key of the previous page).
   */
  export function list(prefix: string, startAfter: string | undefined): Array<string>;
  
  export class Reader implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * The value's size in bytes.
    */
    size(): bigint;
    /**
    * The next bytes, at most `max` (at most 1 MiB); empty at the end.
    */
    read(max: number): Uint8Array;
    [Symbol.dispose](): void;
  }
  
  export class Writer implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * Appends at most 1 MiB. Fails past the value bound, and from
    * then on every call fails.
    */
    write(chunk: Uint8Array): void;
    /**
    * Stores the value under the key, replacing the old one.
    */
    static finish(this_: Writer): void;
    [Symbol.dispose](): void;
  }
}
